"""The lab's email services: a Flask email-service (web.py, under Gunicorn), its Celery
app (tasks.py: worker and beat), the traffic generator (traffic.py) and a small control
CLI for lab.py (ctl.py). Runs in the lab's services virtualenv; lab/svc_app.py starts it.
Configuration comes from the environment that svc_app.py sets (config.py)."""

VERSION = "1.4.0"
