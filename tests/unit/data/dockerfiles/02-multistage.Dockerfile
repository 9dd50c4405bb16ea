# syntax=docker/dockerfile:1

ARG GO_VERSION=1.21
FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM --platform=$BUILDPLATFORM gcr.io/distroless/static AS final
COPY --from=build /out/app /app
USER nonroot:nonroot
ENTRYPOINT ["/app"]
