FROM busybox
VOLUME ["/data", "/var/log"]
VOLUME /a /b   /c
VOLUME ["/unterminated"
EXPOSE 80 8080/udp 9000-9010
EXPOSE ${PORT}
STOPSIGNAL 9
