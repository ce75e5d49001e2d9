# facereg application image: the CLIs today; the worker and dashboard services use it too.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    FACEREG_MODEL_DIR=/models FACEREG_DATA_DIR=/data FACEREG_DATASETS=/datasets
WORKDIR /app

COPY requirements.txt requirements-dev.txt requirements-torch.txt pyproject.toml ./
COPY scripts/bootstrap.sh scripts/bootstrap.sh
# Bootstrap needs the package folders to exist for the editable install.
RUN mkdir -p model services workers dashboard scripts && touch model/__init__.py services/__init__.py scripts/__init__.py \
    && scripts/bootstrap.sh
COPY . .
RUN rm -f .venv/.facereg-requirements && scripts/bootstrap.sh
ENV PATH=/app/.venv/bin:$PATH
VOLUME ["/models", "/data"]
CMD ["python", "scripts/verify_faces.py", "--help"]
