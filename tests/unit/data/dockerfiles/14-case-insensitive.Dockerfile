from alpine as Builder
run echo lower
Run echo mixed
copy --from=builder /a /b
entrypoint ["sh"]
cmd echo hi
expose 80 443/tcp
volume /data
workdir /app
user 1000:1000
stopsignal SIGQUIT
maintainer Jane Doe <jane@example.com>
