# Google Cloud Functions entry point (deployed as main.py).
import datetime
import os
import sys

sys.path.append(os.path.join(os.path.dirname(__file__), '.python_packages/lib/site-packages'))


def handler(req):
    income_timestamp = datetime.datetime.now().timestamp()
    req_json = req.get_json()
    req_json['request-id'] = req.headers.get('Function-Execution-Id')
    req_json['income-timestamp'] = income_timestamp

    from function import function
    begin = datetime.datetime.now()
    ret = function.handler(req_json)
    end = datetime.datetime.now()

    return {
        'begin': begin.strftime('%s.%f'),
        'end': end.strftime('%s.%f'),
        'request_id': req_json['request-id'],
        'result': ret,
    }, 200
