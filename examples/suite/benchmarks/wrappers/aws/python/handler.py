# AWS Lambda entry point: wraps the benchmark's function.handler and adds timing.
import datetime
import json
import os
import sys

sys.path.append(os.path.join(os.path.dirname(__file__), '.python_packages/lib/site-packages'))

COLD_START = True


def handler(event, context):
    global COLD_START
    is_cold, COLD_START = COLD_START, False
    income_timestamp = datetime.datetime.now().timestamp()
    # HTTP trigger through API Gateway: the payload is a JSON string in 'body'
    if 'body' in event:
        event = json.loads(event['body'])
    event['request-id'] = context.aws_request_id
    event['income-timestamp'] = income_timestamp

    from function import function
    begin = datetime.datetime.now()
    ret = function.handler(event)
    end = datetime.datetime.now()

    return {
        'begin': begin.strftime('%s.%f'),
        'end': end.strftime('%s.%f'),
        'request_id': context.aws_request_id,
        'is_cold': is_cold,
        'result': ret,
    }
