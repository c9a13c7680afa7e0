# mlplatform image: user code for the Dagster code location, the run pods the
# K8sRunLauncher starts, and (since mlflow is a dependency) the MLflow server.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The install is editable and the package finds its pyproject.toml at runtime,
# so the source tree must stay here.
WORKDIR /opt/mlplatform

# README.md is the project's `readme`; setuptools needs it to build metadata.
COPY pyproject.toml constraints.txt README.md workspace.yaml ./
COPY mlplatform/ mlplatform/

RUN pip install -c constraints.txt -e . \
 && mkdir -p /data/mlplatform /data/storage

# Compile the drift check's numba kernels now, into the source tree's __pycache__, so that no
# pod's first drift tick waits for the compiler.
RUN python -c "from mlplatform.monitoring.kernels import warm; warm()"

# There is no .git in the image: the commit is baked in at build time and recorded with every
# model trained here (docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) .).
ARG GIT_COMMIT=unknown
ENV MLPLATFORM_CODE_VERSION=${GIT_COMMIT}

# No CMD: the Helm chart (dagster api grpc ...) and k8s/mlflow.yaml (mlflow server ...)
# set the command for each workload.
