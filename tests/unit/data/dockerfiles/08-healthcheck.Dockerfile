FROM nginx
HEALTHCHECK --interval=5m --timeout=3s \
  CMD curl -f http://localhost/ || exit 1
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 CMD ["curl", "-f", "http://localhost/"]
HEALTHCHECK NONE
HEALTHCHECK --start-interval=2s CMD /bin/check
