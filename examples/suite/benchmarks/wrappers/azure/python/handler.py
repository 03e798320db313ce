# Azure Functions HTTP trigger (scriptFile of handler/function.json).
import datetime
import json
import logging

import azure.functions as func


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    income_timestamp = datetime.datetime.now().timestamp()
    req_json = req.get_json()
    req_json['request-id'] = context.invocation_id
    req_json['income-timestamp'] = income_timestamp

    from . import function
    begin = datetime.datetime.now()
    ret = function.handler(req_json)
    end = datetime.datetime.now()
    logging.info('request %s done', context.invocation_id)

    return func.HttpResponse(
        json.dumps({
            'begin': begin.strftime('%s.%f'),
            'end': end.strftime('%s.%f'),
            'request_id': context.invocation_id,
            'result': ret,
        }),
        mimetype='application/json',
    )
