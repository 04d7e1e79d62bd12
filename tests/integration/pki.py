"""
Certificates for federation tests, made at test time with python3-cryptography
(Debian's): a test CA, certificates it signs, and self-signed ones.

Two ways for servers to trust each other, the two s2s authentication paths:

  ca = TestCA(folder)                    # a CA of this run: ca.cert_path (PEM)
  ca.issue("prosody.test")               # signed by it: SASL EXTERNAL (XEP-0178)
  self_signed(folder, "ejabberd.test")   # trusted by nobody: dialback (XEP-0220)

Each returns a Cert: cert_path, key_path (PEM, the key unencrypted) and pem_path (the
certificate then the key in one file, as ejabberd takes them). Keys are ECDSA P-256:
quick to make (a millisecond; RSA-2048 takes a hundred) and what every server here
speaks. The subjectAltNames are what RFC 6125 and XEP-0178 match: a dNSName per name
given (a wildcard "*.example.test" too) and, when asked, id-on-xmppAddr and SRVName
other names, so that a peer's name matching can be tested on each form.
"""
import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

# RFC 6120 §13.7.1.4 (id-on-xmppAddr) and RFC 4985 (id-on-dnsSRV).
OID_XMPP_ADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
OID_DNS_SRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")

VALID_DAYS = 30


def _der_utf8(s):
    return _der(0x0C, s.encode())


def _der_ia5(s):
    return _der(0x16, s.encode("ascii"))


def _der(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


class Cert:
    def __init__(self, folder, name, cert, key):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.cert = cert
        self.cert_path = folder / f"{name}.crt"
        self.key_path = folder / f"{name}.key"
        self.pem_path = folder / f"{name}.pem"
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.cert_path.write_bytes(cert_pem)
        self.key_path.write_bytes(key_pem)
        self.key_path.chmod(0o644)  # read by servers that run as their own user
        self.pem_path.write_bytes(cert_pem + key_pem)


def _san(names, xmpp_addrs, srv_names):
    alt = [x509.DNSName(n) for n in names]
    alt += [x509.OtherName(OID_XMPP_ADDR, _der_utf8(a)) for a in xmpp_addrs]
    alt += [x509.OtherName(OID_DNS_SRV, _der_ia5(s)) for s in srv_names]
    return x509.SubjectAlternativeName(alt)


def _build(subject_cn, issuer_name, public_key, signing_key, *, ca, san=None, days=VALID_DAYS, key_usage=True):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
    elif key_usage:
        b = b.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
    if not ca:
        # Servers present these certificates both ways: as TLS servers (inbound
        # streams) and as TLS clients (outbound streams, where SASL EXTERNAL reads them).
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    if san is not None:
        b = b.add_extension(san, critical=False)
    if signing_key.public_key() != public_key:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                            critical=False)
    return b.sign(signing_key, hashes.SHA256())


class TestCA:
    """A certificate authority of this test run. cert_path is what servers must trust."""

    __test__ = False  # not a pytest class

    def __init__(self, folder, name="starling test CA"):
        self.folder = Path(folder)
        self._key = ec.generate_private_key(ec.SECP256R1())
        cert = _build(name, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
                      self._key.public_key(), self._key, ca=True, days=VALID_DAYS + 1)
        self._cert = Cert(self.folder, "ca", cert, self._key)
        self.cert_path = self._cert.cert_path

    def issue(self, domain, names=None, xmpp_addrs=(), srv_names=(), file_name=None, days=VALID_DAYS):
        """A certificate for `domain` signed by this CA. names: its dNSNames (default
        [domain]); xmpp_addrs, srv_names: id-on-xmppAddr and SRVName ("_xmpp-server.d")
        entries to add."""
        key = ec.generate_private_key(ec.SECP256R1())
        san = _san([domain] if names is None else names, xmpp_addrs, srv_names)
        cert = _build(domain, self._cert.cert.subject, key.public_key(), self._key, ca=False, san=san, days=days)
        return Cert(self.folder, file_name or domain, cert, key)


def self_signed(folder, domain, names=None, file_name=None):
    """A self-signed certificate for `domain` (its own issuer, trusted by no one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = _san([domain] if names is None else names, (), ())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    # No keyUsage: one without keyCertSign would stop OpenSSL from taking the
    # certificate as its own issuer where a client does trust it (a c2s test client).
    cert = _build(domain, name, key.public_key(), key, ca=False, san=san, key_usage=False)
    return Cert(folder, file_name or f"{domain}-self", cert, key)
