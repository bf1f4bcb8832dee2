"""lab.py's hands on Celery (run in the services virtualenv):

python -m emailsvc.ctl enqueue QUEUE N    N tasks on QUEUE now (no worker needed)
python -m emailsvc.ctl purge QUEUE        drop what waits on QUEUE
python -m emailsvc.ctl length QUEUE       the queue's length in Redis"""

from __future__ import annotations

import argparse

import redis

from . import config
from .tasks import app

# What lands on each queue: a task its worker knows (a quick one where there is a choice).
TASK_FOR_QUEUE = {"default": "lab_ping", "emails": "lab_ping", "reports": "generate_report"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="emailsvc.ctl")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_enq = sub.add_parser("enqueue")
    p_enq.add_argument("queue", choices=sorted(TASK_FOR_QUEUE))
    p_enq.add_argument("count", type=int)
    sub.add_parser("purge").add_argument("queue", choices=sorted(TASK_FOR_QUEUE))
    sub.add_parser("length").add_argument("queue", choices=sorted(TASK_FOR_QUEUE))
    args = parser.parse_args()
    client = redis.Redis.from_url(config.BROKER_URL)
    if args.cmd == "enqueue":
        name = TASK_FOR_QUEUE[args.queue]
        task_args: list[object] = ["lab"] if name == "generate_report" else []
        with app.producer_or_acquire() as producer:
            for _ in range(args.count):
                app.send_task(name, args=task_args, queue=args.queue, producer=producer)
        print(f"enqueued {args.count} {name} on {args.queue}; length {client.llen(args.queue)}")
    elif args.cmd == "purge":
        with app.connection_for_write() as conn:
            dropped = conn.default_channel.queue_purge(args.queue) or 0
        print(f"purged {dropped} from {args.queue}")
    else:
        print(client.llen(args.queue))


if __name__ == "__main__":
    main()
