// Every OpenSSL pointer of the Smtp module lives in this file: the SSL_CTX, the SSL,
// X509 certificates, BIOs and the HMAC used by CRAM-MD5. Everything outside it sees
// plain Swift values (SmtpCertificate, [UInt8], String).
import COpenSSL
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Calls an OpenSSL function with an empty error queue before, and returns what the
/// queue holds after (drained), so a failure carries OpenSSL's own reasons.
private func withOpenSSLErrors<T>(_ body: () -> T) -> (T, [String]) {
    ERR_clear_error()
    let result = body()
    return (result, drainOpenSSLErrors())
}

/// Empties OpenSSL's thread-local error queue into readable strings.
private func drainOpenSSLErrors() -> [String] {
    var errors: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        errors.append(String(cString: buffer))
    }
    return errors
}

/// The result of certificate verification after a handshake.
struct TLSVerifyResult {
    /// X509_V_OK (0) when the chain and name were verified.
    var code: Int
    var message: String
    /// How many certificates the server sent (leaf and intermediates); 0 when unknown.
    var peerChainLength = 0
    /// True when the leaf says where its issuer's certificate is published (Authority
    /// Information Access, CA Issuers), as certificates of public CAs do.
    var leafNamesIssuerURL = false
    var isOK: Bool { code == 0 }

    /// Which failure it was, for hints.
    enum Reason { case ok, hostnameMismatch, expired, notYetValid, untrusted, weakKey, other }
    var reason: Reason {
        switch Int32(code) {
        case X509_V_OK: return .ok
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH: return .hostnameMismatch
        case X509_V_ERR_CERT_HAS_EXPIRED: return .expired
        case X509_V_ERR_CERT_NOT_YET_VALID: return .notYetValid
        case X509_V_ERR_EE_KEY_TOO_SMALL, X509_V_ERR_CA_KEY_TOO_SMALL, X509_V_ERR_CA_MD_TOO_WEAK: return .weakKey
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
             X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_UNTRUSTED:
            return .untrusted
        default: return .other
        }
    }
}

/// One X509 certificate, owned.
final class X509Certificate {
    private let pointer: OpaquePointer

    fileprivate init(taking pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }

    /// Parses every certificate in a PEM text. Throws `.invalidInput` when there is none,
    /// or when a `BEGIN CERTIFICATE` block does not parse.
    static func parsePEM(_ pem: String) throws -> [X509Certificate] {
        let bytes = Array(pem.utf8)
        let blocks = pem.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1
        var certificates: [X509Certificate] = []
        let errors: [String] = bytes.withUnsafeBytes { raw -> [String] in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return ["BIO_new_mem_buf failed"] }
            defer { BIO_free(bio) }
            ERR_clear_error()
            while let cert = PEM_read_bio_X509(bio, nil, nil, nil) {
                certificates.append(X509Certificate(taking: cert))
            }
            return drainOpenSSLErrors()  // the last read always leaves "no start line"
        }
        guard blocks > 0, !certificates.isEmpty else {
            throw SmtpError(stage: .tls, kind: .invalidInput, hint: "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
        }
        guard certificates.count == blocks else {
            throw SmtpError(stage: .tls, kind: .invalidInput,
                            hint: "\(blocks - certificates.count) of \(blocks) PEM certificates do not parse",
                            underlying: StreamFailure.tls(function: "PEM_read_bio_X509", errors: errors))
        }
        return certificates
    }

    fileprivate var raw: OpaquePointer { pointer }

    /// SHA-256 of the DER encoding, lowercase hex.
    var sha256Fingerprint: String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(pointer, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return hexString(digest.prefix(Int(length)))
    }

    /// A plain-value description for errors and reports.
    var info: SmtpCertificate {
        SmtpCertificate(
            subject: Self.nameString(X509_get_subject_name(pointer)),
            issuer: Self.nameString(X509_get_issuer_name(pointer)),
            notBefore: Self.timeString(X509_get0_notBefore(pointer)),
            notAfter: Self.timeString(X509_get0_notAfter(pointer)),
            sha256Fingerprint: sha256Fingerprint,
            subjectAlternativeNames: subjectAlternativeNames
        )
    }

    private var subjectAlternativeNames: [String] {
        let index = X509_get_ext_by_NID(pointer, NID_subject_alt_name, -1)
        guard index >= 0, let ext = X509_get_ext(pointer, index) else { return [] }
        let text = Self.withMemoryBIO { bio in _ = X509V3_EXT_print(bio, ext, 0, 0) }
        return text.components(separatedBy: ", ").compactMap { entry -> String? in
            let trimmed = entry.trimmingWhitespace(newlines: true)
            if trimmed.isEmpty { return nil }
            if trimmed.hasPrefix("IP Address:") { return "IP:" + trimmed.dropFirst("IP Address:".count) }
            return trimmed
        }
    }

    /// XN_FLAG_RFC2253 (a macro Swift cannot import) without ASN1_STRFLGS_ESC_MSB, so
    /// UTF-8 names print as UTF-8: ESC_2253|ESC_CTRL|UTF8_CONVERT|DUMP_UNKNOWN|DUMP_DER,
    /// SEP_COMMA_PLUS, DN_REV, DUMP_UNKNOWN_FIELDS.
    private static let nameFlags: UInt = 0x1 | 0x2 | 0x10 | 0x100 | 0x200 | (1 << 16) | (1 << 20) | (1 << 24)

    private static func nameString(_ name: OpaquePointer?) -> String {
        guard let name else { return "" }
        return withMemoryBIO { bio in _ = X509_NAME_print_ex(bio, name, 0, nameFlags) }
    }

    private static func timeString(_ time: UnsafePointer<ASN1_TIME>?) -> String {
        guard let time else { return "" }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return "" }
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    private static func withMemoryBIO(_ body: (OpaquePointer) -> Void) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        body(bio)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = BIO_read(bio, &chunk, Int32(chunk.count))
            if count <= 0 { break }
            output += chunk.prefix(Int(count))
        }
        ERR_clear_error()
        return String(decoding: output, as: UTF8.self)
    }
}

func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// An SSL_CTX for client connections: TLS ≥ 1.2, the system CA store plus extra CAs.
/// Shareable between connections (OpenSSL's SSL_CTX is reference-counted and
/// thread-safe for creating SSL objects once configured).
// @unchecked: an SSL_CTX handle, never changed after init; OpenSSL makes SSL_new on it thread-safe.
final class TLSContext: @unchecked Sendable {
    private let pointer: OpaquePointer

    /// - Parameters:
    ///   - loadTrustStore: load the system CA store and `extraCAPEM` (full verification).
    init(loadTrustStore: Bool, extraCAPEM: String?) throws {
        // Ignore SIGPIPE: OpenSSL writes with write(2), and a peer that closed would
        // otherwise kill the process. Most servers ignore it anyway (documented on SmtpClient).
        _ = signal(SIGPIPE, SIG_IGN)
        let (context, errors) = withOpenSSLErrors { SSL_CTX_new(TLS_client_method()) }
        guard let context else {
            throw SmtpError(stage: .tls, kind: .tlsHandshake, hint: "OpenSSL could not create a TLS context",
                            underlying: StreamFailure.tls(function: "SSL_CTX_new", errors: errors))
        }
        pointer = context
        guard CSmtpTLS_CTX_set_min_tls12(context) == 1 else {
            throw SmtpError(stage: .tls, kind: .tlsHandshake, hint: "OpenSSL refused TLS 1.2 as the minimum version",
                            underlying: StreamFailure.tls(function: "SSL_CTX_set_min_proto_version", errors: drainOpenSSLErrors()))
        }
        // Verification runs during the handshake either way; the session checks the
        // result itself afterwards, so a failure still shows the certificate.
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        if loadTrustStore {
            ERR_clear_error()
            _ = SSL_CTX_set_default_verify_paths(context)
            ERR_clear_error()
            if let pem = extraCAPEM, !pem.trimmingWhitespace(newlines: true).isEmpty {
                let store = SSL_CTX_get_cert_store(context)
                for certificate in try X509Certificate.parsePEM(pem) {
                    ERR_clear_error()
                    if X509_STORE_add_cert(store, certificate.raw) != 1 {
                        let errors = drainOpenSSLErrors()
                        // A duplicate of a system CA is fine.
                        if !errors.contains(where: { $0.contains("already in hash table") }) {
                            throw SmtpError(stage: .tls, kind: .invalidInput, hint: "an extra CA certificate could not be added to the trust store",
                                            underlying: StreamFailure.tls(function: "X509_STORE_add_cert", errors: errors))
                        }
                    }
                }
            }
        }
    }

    deinit { SSL_CTX_free(pointer) }

    /// A context made earlier in this process for the same trust settings, or a new one
    /// kept for `reuseSeconds`. Loading the system CA store costs OpenSSL 3 about 80 ms
    /// on Debian (it parses every certificate of the bundle); a test email paid that on
    /// every session. Entries expire, so a CA bundle updated on disk is picked up.
    static func shared(loadTrustStore: Bool, extraCAPEM: String?) throws -> TLSContext {
        let key = (loadTrustStore ? "1:" : "0:") + (extraCAPEM ?? "")
        let now = Deadline.now()
        if let cached = cache.withLock({ cache in cache[key].flatMap { $0.until > now ? $0.context : nil } }) {
            return cached
        }
        // Made outside the lock: two sessions may both make one; the last one stays.
        let context = try TLSContext(loadTrustStore: loadTrustStore, extraCAPEM: extraCAPEM)
        cache.withLock { cache in
            cache = cache.filter { $0.value.until > now }
            if cache.count >= 16 { cache.removeAll() }  // a bound: settings rarely change
            cache[key] = (context, Deadline.after(seconds: reuseSeconds))
        }
        return context
    }

    /// How long a shared context is reused.
    static let reuseSeconds = 600.0
    private static let cache = Mutex<[String: (context: TLSContext, until: Deadline)]>([:])

    fileprivate var raw: OpaquePointer { pointer }
}

/// TLS over a connected non-blocking socket: SSL_connect/SSL_read/SSL_write retried on
/// SSL_ERROR_WANT_READ/WRITE after poll(), so every call honours its deadline.
final class TLSStream: ByteStream {
    private let ssl: OpaquePointer
    private let socket: SocketStream
    private let context: TLSContext  // keeps the SSL_CTX alive as long as the SSL
    private var closed = false

    /// Creates the SSL for `socket`, with SNI for host names (not IP literals) and the
    /// host name or IP to verify against.
    init(socket: SocketStream, context: TLSContext, serverName: String, checkName: Bool) throws {
        let (ssl, errors) = withOpenSSLErrors { SSL_new(context.raw) }
        guard let ssl else {
            throw StreamFailure.tls(function: "SSL_new", errors: errors)
        }
        self.ssl = ssl
        self.socket = socket
        self.context = context
        CSmtpTLS_set_write_modes(ssl)
        guard SSL_set_fd(ssl, socket.descriptor) == 1 else {
            throw StreamFailure.tls(function: "SSL_set_fd", errors: drainOpenSSLErrors())
        }
        let bare = serverName.hasPrefix("[") && serverName.hasSuffix("]") ? String(serverName.dropFirst().dropLast()) : serverName
        let isIP = SocketStream.isIPLiteral(bare)
        if !isIP, !bare.isEmpty {
            ERR_clear_error()
            guard CSmtpTLS_set_sni_host_name(ssl, bare) == 1 else {
                throw StreamFailure.tls(function: "SSL_set_tlsext_host_name", errors: drainOpenSSLErrors())
            }
        }
        if checkName {
            let param = SSL_get0_param(ssl)
            ERR_clear_error()
            let ok: Int32
            if isIP {
                ok = X509_VERIFY_PARAM_set1_ip_asc(param, bare)
            } else {
                X509_VERIFY_PARAM_set_hostflags(param, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                ok = X509_VERIFY_PARAM_set1_host(param, bare, 0)
            }
            guard ok == 1 else { throw StreamFailure.tls(function: "X509_VERIFY_PARAM_set1_host", errors: drainOpenSSLErrors()) }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// Runs the handshake until done or the deadline.
    func handshake(deadline: Deadline) throws {
        try retrying("SSL_connect", deadline: deadline) { SSL_connect(ssl) }
    }

    /// The leaf certificate the server presented, if any.
    var peerCertificate: SmtpCertificate? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        return X509Certificate(taking: cert).info
    }

    /// The verification outcome (chain and name) of the handshake.
    var verifyResult: TLSVerifyResult {
        let code = SSL_get_verify_result(ssl)
        var result = TLSVerifyResult(code: Int(code), message: String(cString: X509_verify_cert_error_string(code)))
        if let chain = SSL_get_peer_cert_chain(ssl) { result.peerChainLength = Int(OPENSSL_sk_num(chain)) }
        if let leaf = SSL_get1_peer_certificate(ssl) {
            result.leafNamesIssuerURL = X509_get_ext_by_NID(leaf, NID_info_access, -1) >= 0
            X509_free(leaf)
        }
        return result
    }

    /// "TLSv1.3" and the cipher name, for reports.
    var protocolVersion: String { String(cString: SSL_get_version(ssl)) }
    var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl) else { return "" }
        return String(cString: SSL_CIPHER_get_name(cipher))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws -> Int {
        guard !closed else { throw StreamFailure.closed("already closed") }
        var result: Int32 = 0
        do {
            try retrying("SSL_read", deadline: deadline) {
                result = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
                return result
            }
        } catch StreamFailure.closed(let why) where why == "close_notify" {
            return 0
        }
        return Int(result)
    }

    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws {
        guard !closed else { throw StreamFailure.closed("already closed") }
        var offset = 0
        while offset < bytes.count {
            var written: Int32 = 0
            let chunk = Int32(min(bytes.count - offset, 1 << 20))
            try retrying("SSL_write", deadline: deadline) {
                written = SSL_write(ssl, bytes.baseAddress! + offset, chunk)
                return written
            }
            offset += Int(written)
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        ERR_clear_error()
        _ = SSL_shutdown(ssl)  // one non-blocking attempt to send close_notify
        ERR_clear_error()
        socket.close()
    }

    /// Retries an SSL call while it wants to read or write, polling the socket in
    /// between; maps every other outcome to a `StreamFailure`.
    private func retrying(_ function: String, deadline: Deadline, _ call: () -> Int32) throws {
        while true {
            ERR_clear_error()
            errno = 0
            let result = call()
            if result > 0 { return }
            let code = SSL_get_error(ssl, result)
            let savedErrno = errno
            let errors = drainOpenSSLErrors()
            switch code {
            case SSL_ERROR_WANT_READ:
                try socket.waitReadable(deadline: deadline)
            case SSL_ERROR_WANT_WRITE:
                try socket.waitWritable(deadline: deadline)
            case SSL_ERROR_ZERO_RETURN:
                throw StreamFailure.closed("close_notify")
            case SSL_ERROR_SYSCALL:
                if savedErrno == ECONNRESET || savedErrno == EPIPE || savedErrno == 0 {
                    throw StreamFailure.closed(savedErrno == 0 ? "unexpected EOF" : String(cString: strerror(savedErrno)))
                }
                throw StreamFailure.system(function: function, errno: savedErrno)
            default:
                if errors.contains(where: { $0.contains("unexpected eof") }) {
                    throw StreamFailure.closed("unexpected EOF")
                }
                throw StreamFailure.tls(function: function, errors: errors)
            }
        }
    }
}

/// HMAC-MD5 for CRAM-MD5 (RFC 2195), through OpenSSL's one-shot HMAC().
func hmacMD5(key: [UInt8], data: [UInt8]) -> [UInt8] {
    var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var length: UInt32 = 0
    let ok = key.withUnsafeBytes { keyBytes in
        data.withUnsafeBytes { dataBytes in
            HMAC(EVP_md5(), keyBytes.baseAddress, Int32(keyBytes.count),
                 dataBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), dataBytes.count, &output, &length)
        }
    }
    ERR_clear_error()
    return ok == nil ? [] : Array(output.prefix(Int(length)))
}
