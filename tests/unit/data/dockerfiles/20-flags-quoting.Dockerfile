FROM alpine
COPY --chown="a b" src dst
COPY --chown=a\ b src dst
COPY --chown='x y' src dst
COPY --from=stage1 "--not-a-flag" dst
FROM alpine AS stage1
