//! Parsing and expanding a 2,000-line Dockerfile (goal: under 5 ms).
//! Run: `cargo bench -p kiln-dockerfile`.

use std::collections::BTreeMap;

use kiln_dockerfile::{parse, BuildOptions, Platform};

fn main() {
    divan::main();
}

/// A realistic 2,000+-line Dockerfile: many stages mixing every kind of
/// instruction, long `apt-get` continuations, heredocs and expansions.
pub fn big_dockerfile() -> String {
    let mut s = String::from(
        "# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm-slim\nARG VERSION=1.0\n",
    );
    let mut i = 0;
    while s.lines().count() < 2000 {
        s.push_str(&format!(
            r#"FROM ${{BASE}} AS stage{i}
ARG VERSION
ARG TARGETARCH
ENV APP_HOME=/opt/app{i} PATH="/opt/app{i}/bin:$PATH" MODE=release
LABEL org.opencontainers.image.version="${{VERSION}}" stage="{i}" arch=$TARGETARCH
WORKDIR $APP_HOME
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        curl \
        git \
        make \
    ; \
    rm -rf /var/lib/apt/lists/*
RUN --mount=type=cache,target=/root/.cache,id=c{i} --mount=type=bind,source=.,target=/src \
    make -C /src build OUT=$APP_HOME/bin
COPY --chown=1000:1000 --chmod=0644 ["config/app.yaml", "config/log.yaml", "${{APP_HOME}}/etc/"]
COPY --from=stage{prev} /opt/app{prev}/bin/ ./bin/
COPY <<EOF /etc/app{i}.conf
version=${{VERSION}}
home=$APP_HOME
EOF
RUN <<EOF bash
set -e
echo stage {i} on $TARGETARCH
EOF
EXPOSE 80{j} 443/tcp
VOLUME ["/data{i}"]
USER 1000:1000
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost/ || exit 1
ENTRYPOINT ["/opt/app{i}/bin/app"]
CMD ["--serve"]
"#,
            prev = i.max(1) - 1,
            j = i % 10
        ));
        i += 1;
    }
    s
}

fn opts() -> BuildOptions {
    let p = Platform::new("linux", "amd64", None);
    BuildOptions {
        build_args: BTreeMap::from([("VERSION".to_string(), "2.0".to_string())]),
        build_platform: p.clone(),
        target_platform: p,
    }
}

#[divan::bench]
fn parse_2000_lines(bencher: divan::Bencher) {
    let text = big_dockerfile();
    assert!(text.lines().count() >= 2000);
    bencher.bench(|| parse(divan::black_box(&text)).map(|df| df.stages.len()));
}

#[divan::bench]
fn parse_and_expand_2000_lines(bencher: divan::Bencher) {
    let text = big_dockerfile();
    let opts = opts();
    bencher.bench(|| {
        let df = parse(divan::black_box(&text)).expect("parses");
        df.expand_all(&opts).expect("expands").len()
    });
}
