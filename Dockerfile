# One image, three services: `baton serve intake|router|followup`, `baton migrate`.
# Multi-stage: dependencies are built into a venv in the builder, the runtime stage is slim
# and runs as a non-root user.
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/baton
COPY pyproject.toml constraints.txt ./
COPY shared ./shared
COPY services ./services
COPY ops ./ops
RUN /opt/baton/bin/pip install -c constraints.txt .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/baton/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 POLICY_PATH=/etc/baton/policy.yaml
RUN groupadd --system --gid 10001 baton \
 && useradd --system --uid 10001 --gid baton --no-create-home --shell /usr/sbin/nologin baton
COPY --from=builder /opt/baton /opt/baton
COPY deploy/policy.example.yaml /etc/baton/policy.yaml
USER 10001:10001
EXPOSE 8001 8002 8003 8004
# uvicorn drains in-flight requests on SIGTERM; the lifespan then commits consumer offsets,
# drains the outbox relay and closes the clients.
STOPSIGNAL SIGTERM
ENTRYPOINT ["baton"]
CMD ["serve", "intake"]
