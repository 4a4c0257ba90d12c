#!/usr/bin/env bash
# Installs what the local run and the tests need on Debian 12, as root, only
# when something is missing. Extra packages may be named as arguments.
set -euo pipefail

packages=(
    libfcgi-dev libfcgi-bin spawn-fcgi     # FastCGI library, cgi-fcgi, spawn-fcgi
    libmariadb-dev mariadb-server mariadb-client
    galera-4 rsync iproute2                # the three-node Galera cluster of the tests (scripts/lib/galera.sh; rsync SST, ss)
    libssl-dev openssl
    libcurl4-openssl-dev                   # HTTPS to OAuth token endpoints (Sources/CCurl)
    libidn2-dev                            # internationalized host names, IDNA2008/UTS #46 (Sources/CIDN2)
    libc-ares-dev                          # the DNS stub resolver (Sources/CAres, Sources/MailDNS)
    nsd                                    # the authoritative DNS server of the tests (Tests/Fixtures/dns)
    nginx
    python3 python3-aiosmtpd               # real SMTP servers for the tests
    python3-authlib python3-flask          # the OAuth 2.0 authorization server for the tests (Tests/Fixtures/oauth)
    curl ca-certificates procps psmisc
    "$@"
)

missing=()
for p in "${packages[@]}"; do
    # Any nginx flavour (nginx, nginx-light, nginx-full…) will do.
    if [[ $p == nginx ]] && command -v nginx >/dev/null 2>&1; then continue; fi
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing Debian packages: ${missing[*]} — run as root, or install them first" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "note: Swift found at /opt/swift/usr/bin; add it to PATH" >&2
    else
        echo "Swift 6 is required (swift not on PATH, not at /opt/swift): install a Swift toolchain from swift.org" >&2
        exit 1
    fi
fi
