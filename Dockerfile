# syntax=docker/dockerfile:1
# genai-chatbot as a container: the server on 0.0.0.0:8000, as a non-root user, API keys required.
#
#   docker build -t genai-chatbot .                              # remote providers only (small)
#   docker build -t genai-chatbot --build-arg EMBEDDED_MODEL=true .   # plus the embedded SmolLM2 model
#
# The server refuses to listen beyond loopback with auth = "none", so the image sets
# GENAI_CHATBOT_AUTH=api-keys; set GENAI_CHATBOT_AUTH=oidc (and GENAI_CHATBOT_OIDC__*) for Cognito sign-in.
# Set GENAI_CHATBOT_ALLOWED_HOSTS='["chat.example.com"]' to the name clients use, and
# GENAI_CHATBOT_DEFAULT_MODEL to a model the deployment has. See docs/deploy-aws.md.

ARG PYTHON_VERSION=3.12

# ---- build: a virtual environment with the package and the extras the image needs --------------------
FROM python:${PYTHON_VERSION}-slim AS build
ARG EMBEDDED_MODEL=false
ARG EXTRAS=openai,aws,cohere,ai21,oidc,postgres
# llama.cpp for a fleet, not for the build machine: no -march=native (see scripts/build-llama-cpp.sh), and
# the instruction sets every current x86-64 server (Fargate included) has.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN set -eu; extras="$EXTRAS"; \
    if [ "$EMBEDDED_MODEL" = "true" ]; then \
      apt-get update && apt-get install -y --no-install-recommends build-essential cmake; \
      CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install --no-binary llama-cpp-python "llama-cpp-python>=0.3.7"; \
      extras="$extras,local"; \
    fi; \
    pip install ".[$extras]"

# ---- runtime: the environment, a user, nothing else -------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ARG EMBEDDED_MODEL=false
RUN set -eu; \
    if [ "$EMBEDDED_MODEL" = "true" ]; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 chatbot; \
    useradd --system --uid 10001 --gid chatbot --home-dir /app --create-home --shell /usr/sbin/nologin chatbot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GENAI_CHATBOT_HOST=0.0.0.0 \
    GENAI_CHATBOT_PORT=8000 \
    GENAI_CHATBOT_DATA_DIR=/app/data \
    GENAI_CHATBOT_AUTH=api-keys \
    GENAI_CHATBOT_LOCAL__ENABLED=${EMBEDDED_MODEL}
USER chatbot
WORKDIR /app
RUN mkdir -m 0700 /app/data
VOLUME ["/app/data"]
EXPOSE 8000
# /healthz answers whatever the Host header, so this probe and a load balancer's pass the host check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["genai-chatbot"]
CMD ["serve"]
