"""A minimal Django project behind obs, served by gunicorn (WSGI) and uvicorn (ASGI) in tests."""
