FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kubellm ./kubellm
COPY cmd ./cmd
RUN pip install --no-cache-dir . && useradd --uid 65532 --no-create-home kubellm
USER 65532
ENTRYPOINT ["kubellm-apiserver"]
