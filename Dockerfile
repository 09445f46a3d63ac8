FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN ALGOMIRROR_MODE=production SECRET_KEY=build-only-not-secret-build-only-not-secret-123456 \
    ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --no-input
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "algomirror.asgi:application"]
