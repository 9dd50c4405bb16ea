FROM alpine
COPY --chown=55:mygroup files* /somedir/
COPY --chown=bin files* /somedir/
COPY --chmod=644 --link hom?.txt /mydir/
COPY ["with space.txt", "/dest dir/"]
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf
ADD --chown=1:1 https://example.com/big.tar.xz /usr/src/things/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/x /x
COPY -- --weird-name /dest
COPY arr[[]0].txt /mydir/
