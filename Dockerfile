# One image for every subcommand: docker run riff edge -listen :8082 ...
# Untested here (no Docker engine on the build machines); kept simple on purpose.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/riff ./cmd/riff

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/riff --create-home riff
COPY --from=build /out/riff /usr/local/bin/riff
COPY configs /etc/riff
USER riff
WORKDIR /var/lib/riff
ENTRYPOINT ["/usr/local/bin/riff"]
CMD ["--help"]
