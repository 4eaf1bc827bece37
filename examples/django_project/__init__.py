"""A minimal Django project behind obs: settings.MIDDLEWARE lists obs first, urls.py serves /metrics.

Run:  gunicorn --chdir examples django_project.wsgi
Or:   uvicorn django_project.asgi:application --app-dir examples --no-access-log
Then: curl -i localhost:8000/polls/1/ ; curl localhost:8000/metrics
"""
