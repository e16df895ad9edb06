# The production image: gunicorn + whitenoise for web; the same image runs the worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DEBUG=false SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --noinput \
    && useradd --system --no-create-home imrtrial
USER imrtrial
EXPOSE 8000
CMD ["gunicorn", "imrtrial.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
