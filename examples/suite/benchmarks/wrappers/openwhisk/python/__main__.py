# OpenWhisk action entry point.
import datetime
import os


def main(args):
    income_timestamp = datetime.datetime.now().timestamp()
    args['request-id'] = os.getenv('__OW_ACTIVATION_ID')
    args['income-timestamp'] = income_timestamp

    from function import function
    begin = datetime.datetime.now()
    ret = function.handler(args)
    end = datetime.datetime.now()

    return {
        'begin': begin.strftime('%s.%f'),
        'end': end.strftime('%s.%f'),
        'request_id': args['request-id'],
        'result': ret,
    }
