FROM golang:1.21
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,source=.,target=/src \
    go build ./...
RUN --network=none --security=insecure echo sandboxed
RUN --mount=type=secret,id=mytoken,env=TOKEN curl -H "Authorization: $TOKEN" x
