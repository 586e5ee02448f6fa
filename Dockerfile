# syntax=docker/dockerfile:1
# facegan's deploy images (build from the repo root, after `facegan export`):
#   docker build --target serving -t facegan-serving .   official TensorFlow Serving + models/facegan
#   docker build --target demo    -t facegan-demo .      the Gradio demo (gRPC client only, no TensorFlow)
#   docker build --target trainer -t facegan-trainer .   TensorFlow with CUDA: facegan train / export
#   docker build --target trainer-jax -t facegan-trainer-jax .   the same with JAX (KERAS_BACKEND=jax)
# docker-compose.yml runs serving + demo together.
ARG TF_SERVING_VERSION=2.21.0
ARG TF_VERSION=2.21.0
ARG PYTHON_VERSION=3.11

# ---- serving: the real tensorflow_model_server ----------------------------------------------
# Pinned to the TensorFlow release that facegan exports with, so every op in the graph is known.
FROM tensorflow/serving:${TF_SERVING_VERSION} AS serving
# The image's entrypoint runs: tensorflow_model_server --port=8500 --rest_api_port=8501
#   --model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"
ENV MODEL_NAME=facegan
ENV MODEL_BASE_PATH=/models
COPY models/facegan /models/facegan
COPY deploy/k8s/config/batching_parameters.txt /etc/facegan/batching_parameters.txt
EXPOSE 8500 8501
# TF Serving's gRPC health service (--enable_grpc_healthcheck_service, since 2.15.1) says SERVING
# as soon as the port is open, before any model is loaded; the model-status API on the REST port
# says AVAILABLE only once a version can answer, so that is what the check asks.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8501 && printf 'GET /v1/models/%s HTTP/1.0\\r\\n\\r\\n' \"$MODEL_NAME\" >&3 && grep -q AVAILABLE <&3"]
CMD ["--enable_batching=true", "--batching_parameters_file=/etc/facegan/batching_parameters.txt", \
     "--file_system_poll_wait_seconds=1"]

# ---- demo: slim Python with the TF-free client and Gradio ------------------------------------
# facegan's base install is the client; the demo extra adds Gradio (docs/install.md). setup.py
# vendors onnxruntime-web into the package when the checkout has not (from npm's registry).
FROM python:${PYTHON_VERSION}-slim AS demo
WORKDIR /app
COPY pyproject.toml setup.py README.md /app/
COPY facegan /app/facegan
RUN pip install --no-cache-dir "/app[demo]"
EXPOSE 7860
USER 65534:65534
ENTRYPOINT ["facegan"]
CMD ["demo", "--server", "serving:8500", "--host", "0.0.0.0", "--port", "7860"]

# ---- trainer: TensorFlow with CUDA -----------------------------------------------------------
FROM tensorflow/tensorflow:${TF_VERSION}-gpu AS trainer
WORKDIR /work
COPY pyproject.toml setup.py README.md /src/
COPY facegan /src/facegan
RUN pip install --no-cache-dir "/src[tf,metrics]"
ENTRYPOINT ["facegan"]
CMD ["train", "--help"]

# ---- trainer-jax: the trainer plus JAX with CUDA, for KERAS_BACKEND=jax (deploy/k8s/training/jax-job.yaml) ----
FROM trainer AS trainer-jax
RUN pip install --no-cache-dir "jax[cuda12]>=0.4.30"
ENV KERAS_BACKEND=jax
