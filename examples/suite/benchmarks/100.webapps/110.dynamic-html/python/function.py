import os
import random
from datetime import datetime

from sebs_example_util import render

SCRIPT_DIR = os.path.abspath(os.path.dirname(__file__))


def handler(event):
    name = event.get('username')
    size = event.get('random_len')
    cur_time = datetime.now()
    random_numbers = random.sample(range(0, 1000000), size)
    with open(os.path.join(SCRIPT_DIR, 'templates', 'template.html')) as f:
        template = f.read()
    html = render(template, username=name, cur_time=cur_time,
                  random_numbers=random_numbers)
    return {'result': html}
