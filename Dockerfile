# syntax=docker/dockerfile:1
#
# certkeeper in a container: a static binary (no cgo: SQLite is pure Go) on
# distroless's static image, running as the unprivileged user 65532.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t certkeeper .
#   docker run -p 8080:8080 -v certkeeper:/var/lib/certkeeper \
#     -v $PWD/certkeeper.yaml:/etc/certkeeper/certkeeper.yaml:ro certkeeper
#
# The data directory /var/lib/certkeeper holds the SQLite database and the
# master key file; with PostgreSQL and CERTKEEPER_MASTER_KEY it may be empty.
# In the image the environment sets listen (0.0.0.0:8080), dataDir and the
# configuration file's path, and so overrides those keys of the file; pass
# -e CERTKEEPER_LISTEN=... to change them.

# Keep in step with the toolchain directive of go.mod (deploy/dockerfile_test.go checks).
ARG GO_VERSION=1.26.10

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/certkeeper ./cmd/certkeeper \
 && mkdir -p /out/data /out/config

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/certkeeper /usr/local/bin/certkeeper
COPY --from=build --chown=65532:65532 /out/data /var/lib/certkeeper
COPY --from=build /out/config /etc/certkeeper
USER 65532:65532
ENV CERTKEEPER_DATA_DIR=/var/lib/certkeeper \
    CERTKEEPER_LISTEN=0.0.0.0:8080 \
    CERTKEEPER_CONFIG=/etc/certkeeper/certkeeper.yaml
EXPOSE 8080
VOLUME ["/var/lib/certkeeper"]
ENTRYPOINT ["/usr/local/bin/certkeeper"]
CMD ["serve"]
