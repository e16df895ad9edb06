# The production image: gunicorn + whitenoise for web; the same image runs the worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
# gettext's msgfmt compiles the translation catalogues (locale/*.po; the .mo files are built
# here, never committed).
RUN apt-get update && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN DEBUG=false SECRET_KEY=build-only-not-a-secret python manage.py compilemessages -i node_modules \
    && DEBUG=false SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --noinput \
    && useradd --system --no-create-home imrtrial
USER imrtrial
EXPOSE 8000
CMD ["gunicorn", "imrtrial.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
