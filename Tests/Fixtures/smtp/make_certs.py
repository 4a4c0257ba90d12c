#!/usr/bin/python3
"""Makes the test CA and server certificates for the Smtp tests into OUTDIR.

Uses python3-cryptography (Debian's, for /usr/bin/python3): unlike `openssl x509` of
OpenSSL 3.0 it can set any validity period, so "expired" needs no `openssl ca` config.

  ca.pem                  test CA (self-signed)
  good.pem/.key           CN=localhost, SAN DNS:localhost IP:127.0.0.1 IP:::1, by the CA
  wronghost.pem/.key      CN=mail.example.org, SAN DNS:mail.example.org, by the CA
  expired.pem/.key        localhost names, valid 2020-01-01..2021-01-01, by the CA
  selfsigned.pem/.key     localhost names, self-signed
  other-ca.pem            an unrelated CA (not the issuer of anything here)
  intermediate.pem        an intermediate CA, issued by the test CA
  incomplete.pem/.key     localhost names, by the intermediate, with an AIA CA Issuers URL as
                          public CAs write it; the file holds the leaf alone (an incomplete chain)
  fullchain.pem/.key      the same leaf followed by the intermediate (the chain done right)
  cnonly.pem/.key         CN=127.0.0.1 and no subjectAltName, by the CA
  weakkey.pem/.key        localhost names, a 1024-bit RSA key, by the CA
  notyet.pem/.key         localhost names, valid from 2090, by the CA
  discovery.pem/.key      the discovery test domains (each D and *.D of DISCOVERY_DOMAINS) plus
                          localhost names, by the CA: autoconfig hosts and SMTP hosts of the tests
"""
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, ExtendedKeyUsageOID


def key():
    return ec.generate_private_key(ec.SECP256R1())


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EmailSetup Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write(outdir, base, cert, private_key=None):
    with open(os.path.join(outdir, base + ".pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    if private_key is not None:
        with open(os.path.join(outdir, base + ".key"), "wb") as f:
            f.write(private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))


def make_ca(cn, issuer=None):
    """A CA, self-signed, or issued by `issuer` (key, certificate) as an intermediate."""
    k = key()
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name(cn))
            .issuer_name(issuer[1].subject if issuer else name(cn))
            .public_key(k.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(issuer[0] if issuer else k, hashes.SHA256()))
    return k, cert


def make_leaf(cn, dns, ips, issuer_key, issuer_cert, not_before, not_after, private_key=None, issuer_url=None):
    k = private_key or key()
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (x509.CertificateBuilder().subject_name(name(cn))
               .issuer_name(issuer_cert.subject if issuer_cert is not None else name(cn))
               .public_key(k.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if issuer_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess(
            [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(issuer_url))]),
            critical=False)
    cert = builder.sign(issuer_key if issuer_key is not None else k, hashes.SHA256())
    return k, cert


# Domains of the discovery tests (Tests/DiscoveryTests, zones in Tests/Fixtures/dns).
DISCOVERY_DOMAINS = ["example.test", "srv.example.test", "ac.example.test", "acwk.example.test",
                     "achuge.example.test", "acdead.example.test", "acentity.example.test", "acwrong.example.test",
                     "guess.example.test", "nothing.example.test", "mx365.example.test"]


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    now = datetime.datetime.utcnow()
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=825)
    ca_key, ca = make_ca("EmailSetup Test CA")
    write(outdir, "ca", ca, ca_key)
    _, other = make_ca("Unrelated Test CA")
    write(outdir, "other-ca", other)
    local = (["localhost"], ["127.0.0.1", "::1"])
    for base, cn, names, issuer, nb, na in [
        ("good", "localhost", local, (ca_key, ca), start, end),
        ("wronghost", "mail.example.org", (["mail.example.org"], []), (ca_key, ca), start, end),
        ("expired", "localhost", local, (ca_key, ca),
         datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1)),
        ("selfsigned", "localhost", local, (None, None), start, end),
    ]:
        k, cert = make_leaf(cn, names[0], names[1], issuer[0], issuer[1], nb, na)
        write(outdir, base, cert, k)
    # Chain families: an intermediate, and a leaf sent without it (incomplete) or with it.
    inter_key, inter = make_ca("EmailSetup Test Intermediate CA", issuer=(ca_key, ca))
    write(outdir, "intermediate", inter)
    k, leaf = make_leaf("localhost", local[0], local[1], inter_key, inter, start, end,
                        issuer_url="http://ca.test.invalid/intermediate.der")
    write(outdir, "incomplete", leaf, k)
    write(outdir, "fullchain", leaf, k)
    with open(os.path.join(outdir, "fullchain.pem"), "ab") as f:
        f.write(inter.public_bytes(serialization.Encoding.PEM))
    for base, cn, names, nb, na, private_key in [
        ("cnonly", "127.0.0.1", ([], []), start, end, None),
        ("weakkey", "localhost", local, start, end, rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        ("notyet", "localhost", local, datetime.datetime(2090, 1, 1), datetime.datetime(2091, 1, 1), None),
    ]:
        k, cert = make_leaf(cn, names[0], names[1], ca_key, ca, nb, na, private_key=private_key)
        write(outdir, base, cert, k)
    names = ["localhost"] + [n for d in DISCOVERY_DOMAINS for n in (d, "*." + d)]
    k, cert = make_leaf("example.test", names, local[1], ca_key, ca, start, end)
    write(outdir, "discovery", cert, k)
    print("OK", flush=True)


if __name__ == "__main__":
    main()
