# podns, as a static binary on an empty base image.
#   docker build -t podns:0.1.0 .
# Stage 1 builds against musl, so the result needs no libc at run time; ring (the TLS crypto of
# the Kubernetes client) compiles with musl-gcc.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked -p podns --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/dist/podns /podns

# Stage 2: only the binary and the CA roots (for an API server behind a public CA), run as an
# unprivileged user. The Deployment in deploy/ adds NET_BIND_SERVICE for port 53.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /podns /podns
USER 65532:65532
EXPOSE 53/udp 53/tcp 9153/tcp
ENTRYPOINT ["/podns"]
CMD ["serve", "--kubernetes", "--listen=0.0.0.0:53", "--admin-listen=0.0.0.0:9153"]
