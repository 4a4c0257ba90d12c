import CCurl
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// HTTPS requests through libcurl, with the same rules as the SMTP side: certificate
/// and host name verified against the system CAs (plus `caFile`), a connect timeout
/// and a total deadline, `https` only, no redirects followed (a 3xx is an error with
/// kind `redirect` naming the target), and a body bounded while it is read. This file
/// owns every libcurl pointer of the project.
///
/// Each request uses its own easy handle, so one client may be used from many threads.
///
/// ```swift
/// let client = HTTPSClient(caFile: nil, connectTimeout: 10, deadline: 30)
/// let answer = try client.postForm("https://oauth2.googleapis.com/token", fields: [("grant_type", "refresh_token"), …])
/// let document = try client.get("https://autoconfig.example.org/mail/config-v1.1.xml", maxBytes: 64 * 1024, accept: "application/xml")
/// ```
public struct HTTPSClient: Sendable {
    /// A PEM file of extra trusted CAs (a private CA), in addition to the system's.
    public var caFile: String?
    /// Seconds to wait for the TCP + TLS connection.
    public var connectTimeout: Double
    /// Seconds for the whole request, connection included.
    public var deadline: Double
    /// Largest body accepted; a larger one is a `tooLarge` error (token answers are ~4 KiB).
    public var maxResponseBytes: Int
    /// Called every 100 ms or sooner while waiting; `true` ends the request with kind `aborted`.
    public var shouldAbort: (@Sendable () -> Bool)?
    /// Addresses to connect to per host name ("autoconfig.example.org" → ["192.0.2.1"]),
    /// instead of the system resolver's: callers that resolve with their own DNS servers
    /// (discovery) pass what they found. The name stays what is verified and sent as SNI.
    public var addresses: [String: [String]]
    /// The User-Agent header.
    public var userAgent: String

    /// Makes a client.
    public init(caFile: String? = nil, connectTimeout: Double = 10, deadline: Double = 30,
                maxResponseBytes: Int = 64 * 1024, shouldAbort: (@Sendable () -> Bool)? = nil,
                addresses: [String: [String]] = [:], userAgent: String = "EmailSetup/1") {
        self.caFile = caFile
        self.connectTimeout = connectTimeout
        self.deadline = deadline
        self.maxResponseBytes = maxResponseBytes
        self.shouldAbort = shouldAbort
        self.addresses = addresses
        self.userAgent = userAgent
    }

    /// POSTs `fields` as application/x-www-form-urlencoded to `url` with `Accept: application/json`.
    ///
    /// Any HTTP status is an answer (the caller reads OAuth errors from 4xx bodies), except
    /// a redirect, which is not followed and throws kind `redirect`.
    /// - Throws: ``HTTPSError`` with kind `timeout`, `refused`, `unreachable`, `tlsVerify`,
    ///   `tlsHandshake`, `tooLarge`, `redirect`, `protocol`, `invalidInput` (URL, CA file) or `aborted`.
    public func postForm(_ url: String, fields: [(String, String)]) throws(HTTPSError) -> HTTPSResponse {
        try perform(url, limit: maxResponseBytes,
                    headers: ["Accept: application/json", "Content-Type: application/x-www-form-urlencoded", "Expect:"],
                    body: FormEncoding.encode(fields))
    }

    /// GETs `url` with `Accept: accept`, reading at most `maxBytes` (default
    /// ``maxResponseBytes``): a larger body is refused up front when its Content-Length
    /// says so and cut off while reading otherwise (kind `tooLarge`). Any status is an
    /// answer except a redirect, which is not followed (kind `redirect`, `location` set).
    /// - Throws: ``HTTPSError`` as ``postForm(_:fields:)``.
    public func get(_ url: String, maxBytes: Int? = nil, accept: String) throws(HTTPSError) -> HTTPSResponse {
        try perform(url, limit: maxBytes ?? maxResponseBytes, headers: ["Accept: " + accept], body: nil)
    }

    private func perform(_ url: String, limit: Int, headers: [String], body: String?) throws(HTTPSError) -> HTTPSResponse {
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw HTTPSError(kind: .invalidInput, url: url,
                             hint: "the CA file \(caFile) does not exist or is not readable by the responder")
        }
        guard curlGlobalInit == CURLE_OK else {
            throw HTTPSError(kind: .protocol, url: url, hint: "libcurl failed to initialise (curl_global_init); check the libcurl installation")
        }
        let transfer = try CurlTransfer(limit: limit, url: url)
        try transfer.configure(headers: headers, body: body, client: self)
        return try transfer.run(client: self)
    }
}

/// curl_global_init is not thread-safe: a Swift global is initialised exactly once,
/// under a lock, before the first request uses libcurl.
private let curlGlobalInit: CURLcode = CCurl_global_init_default()

/// The response bytes as they arrive, bounded; shared with the C write callback.
private final class ResponseSink {
    let limit: Int
    var body: [UInt8] = []
    var overflowed = false
    init(limit: Int) { self.limit = limit }
}

/// CURLOPT_WRITEFUNCTION: appends to the sink; answering less than offered makes
/// libcurl stop with CURLE_WRITE_ERROR once the limit would be passed (a chunked body
/// has no Content-Length for CURLOPT_MAXFILESIZE to check up front).
private let writeToSink: CCurl_write_callback = { data, size, count, user in
    guard let data, let user else { return 0 }
    let sink = Unmanaged<ResponseSink>.fromOpaque(user).takeUnretainedValue()
    let length = size * count
    guard sink.body.count + length <= sink.limit else {
        sink.overflowed = true
        return 0
    }
    data.withMemoryRebound(to: UInt8.self, capacity: length) {
        sink.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
    }
    return length
}

/// One request: an easy handle inside its own multi handle (so waiting happens in
/// 100 ms slices and the abort check runs between them), freed in deinit.
private final class CurlTransfer {
    private let easy: UnsafeMutableRawPointer
    private let multi: UnsafeMutableRawPointer
    private var headers: UnsafeMutablePointer<curl_slist>?
    private var resolve: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let sink: ResponseSink
    private let url: String
    private var added = false

    init(limit: Int, url: String) throws(HTTPSError) {
        guard let easy = curl_easy_init() else {
            throw HTTPSError(kind: .protocol, url: url, hint: "libcurl could not make a handle (out of memory?)")
        }
        guard let multi = curl_multi_init() else {
            curl_easy_cleanup(easy)
            throw HTTPSError(kind: .protocol, url: url, hint: "libcurl could not make a handle (out of memory?)")
        }
        self.easy = easy
        self.multi = multi
        self.url = url
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        sink = ResponseSink(limit: limit)
    }

    deinit {
        if added { curl_multi_remove_handle(multi, easy) }
        curl_easy_cleanup(easy)
        curl_multi_cleanup(multi)
        curl_slist_free_all(headers)
        curl_slist_free_all(resolve)
        errorBuffer.deallocate()
    }

    func configure(headers lines: [String], body: String?, client: HTTPSClient) throws(HTTPSError) {
        try set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        try set(CURLOPT_URL, url)
        // https only, also for any redirect target; redirects are not followed at all.
        try set(CURLOPT_PROTOCOLS_STR, "https")
        try set(CURLOPT_REDIR_PROTOCOLS_STR, "https")
        try set(CURLOPT_FOLLOWLOCATION, 0)
        // The responder is threaded: no SIGALRM for DNS timeouts (the threaded resolver is used).
        try set(CURLOPT_NOSIGNAL, 1)
        try set(CURLOPT_CONNECTTIMEOUT_MS, milliseconds(client.connectTimeout))
        try set(CURLOPT_TIMEOUT_MS, milliseconds(client.deadline))
        try set(CURLOPT_SSL_VERIFYPEER, 1)
        try set(CURLOPT_SSL_VERIFYHOST, 2)
        // CAINFO replaces the bundle file; libcurl's CAPATH (Debian: /etc/ssl/certs)
        // still holds the system CAs, so the result is system CAs plus this file.
        if let caFile = client.caFile { try set(CURLOPT_CAINFO, caFile) }
        // Refused up front when the server announces a larger Content-Length.
        try set(CURLOPT_MAXFILESIZE, sink.limit)
        try set(CURLOPT_USERAGENT, client.userAgent)
        // CURLOPT_RESOLVE entries "host:port:addr,addr" pre-fill libcurl's DNS cache,
        // so the connection goes where the caller's resolver said.
        if let components = URLComponents(string: url), let host = components.host,
           let addresses = client.addresses[host.lowercased()] ?? client.addresses[host], !addresses.isEmpty {
            let port = components.port ?? 443
            let entry = "\(host):\(port):" + addresses.map { $0.contains(":") ? "[\($0)]" : $0 }.joined(separator: ",")
            resolve = try append(resolve, entry)
            try set(CURLOPT_RESOLVE, pointer: UnsafeMutableRawPointer(resolve))
        }
        for line in lines { headers = try append(headers, line) }
        try set(CURLOPT_HTTPHEADER, pointer: UnsafeMutableRawPointer(headers))
        try check(CCurl_easy_setopt_write_callback(easy, writeToSink), option: "WRITEFUNCTION")
        try set(CURLOPT_WRITEDATA, pointer: Unmanaged.passUnretained(sink).toOpaque())
        // COPYPOSTFIELDS: libcurl keeps its own copy, and setting it makes the request a POST.
        if let body { try set(CURLOPT_COPYPOSTFIELDS, body) } else { try set(CURLOPT_HTTPGET, 1) }
    }

    private func append(_ list: UnsafeMutablePointer<curl_slist>?, _ line: String) throws(HTTPSError) -> UnsafeMutablePointer<curl_slist> {
        guard let appended = curl_slist_append(list, line) else {
            throw HTTPSError(kind: .protocol, url: url, hint: "libcurl could not allocate a list entry (out of memory?)")
        }
        return appended
    }

    func run(client: HTTPSClient) throws(HTTPSError) -> HTTPSResponse {
        guard curl_multi_add_handle(multi, easy) == CURLM_OK else {
            throw HTTPSError(kind: .protocol, url: url, hint: "libcurl refused to start the request")
        }
        added = true
        var running: Int32 = 1
        while true {
            if client.shouldAbort?() == true {
                throw HTTPSError(kind: .aborted, url: url, hint: "the request to \(hostAndPort) was abandoned: the client went away")
            }
            guard curl_multi_perform(multi, &running) == CURLM_OK else {
                throw HTTPSError(kind: .protocol, url: url, hint: "libcurl failed while running the request (curl_multi_perform)")
            }
            if running == 0 { break }
            // libcurl's own timers (connect timeout, deadline) wake this poll early.
            _ = curl_multi_poll(multi, nil, 0, 100, nil)
        }
        var result = CURLE_OK
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            if message.pointee.msg == CURLMSG_DONE { result = CCurl_message_result(message) }
        }
        guard result == CURLE_OK else { throw failure(result, client: client) }

        var status = 0
        _ = CCurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        if (300..<400).contains(status) {
            var target: UnsafeMutablePointer<CChar>?
            _ = CCurl_easy_getinfo_string(easy, CURLINFO_REDIRECT_URL, &target)
            let location = target.map { String(String(cString: $0).prefix(200)) }
            throw HTTPSError(kind: .redirect, httpStatus: status, url: url, location: location,
                             hint: "\(hostAndPort) answered a redirect (HTTP \(status)\(location.map { " to \($0)" } ?? "")); redirects are not followed: use the final https URL")
        }
        var contentType: UnsafeMutablePointer<CChar>?
        _ = CCurl_easy_getinfo_string(easy, CURLINFO_CONTENT_TYPE, &contentType)
        return HTTPSResponse(status: status, body: Data(sink.body), contentType: contentType.map { String(cString: $0) })
    }

    private var hostAndPort: String {
        URLComponents(string: url).map { ($0.host ?? url) + ($0.port.map { ":\($0)" } ?? "") } ?? url
    }

    /// Maps a CURLcode to the error kinds the SMTP side uses, with a hint naming the fix.
    private func failure(_ code: CURLcode, client: HTTPSClient) -> HTTPSError {
        let detail = errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        let host = hostAndPort
        func error(_ kind: HTTPSError.Kind, _ hint: String) -> HTTPSError {
            HTTPSError(kind: kind, url: url, detail: detail, hint: hint)
        }
        let tooLarge = "the answer of \(host) is larger than \(sink.limit / 1024) KiB: check the URL"
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return error(.timeout, "no answer from \(host) within \(seconds(client.connectTimeout)) s (connect) / \(seconds(client.deadline)) s (total): check the URL and that outbound HTTPS to it is allowed")
        case CURLE_COULDNT_CONNECT:
            var osError = 0
            _ = CCurl_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osError)
            switch Int32(osError) {
            case ENETUNREACH, EHOSTUNREACH:
                return error(.unreachable, "no route to \(host): check the host name and the server's network and firewall")
            case ETIMEDOUT:
                return error(.timeout, "no answer from \(host) while connecting: check the URL and that outbound HTTPS to it is allowed")
            default:
                return error(.refused, "\(host) refused the connection: check the host and port")
            }
        case CURLE_COULDNT_RESOLVE_HOST:
            return error(.unreachable, "the host name of \(host) does not resolve: check the URL and the server's DNS")
        case CURLE_PEER_FAILED_VERIFICATION:
            return error(.tlsVerify, "the certificate of \(host) failed verification (\(detail)): if the server uses a private CA, set its CA file; otherwise check the host name")
        case CURLE_SSL_CACERT_BADFILE:
            return error(.invalidInput, "the CA file could not be loaded as PEM certificates: check its contents")
        case CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND:
            return error(.tlsHandshake, "the TLS handshake with \(host) failed (\(detail)): the server must speak HTTPS on that port")
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return error(.invalidInput, "the URL must be an https:// URL: \(url)")
        case CURLE_FILESIZE_EXCEEDED:
            return error(.tooLarge, tooLarge)
        case CURLE_WRITE_ERROR where sink.overflowed:
            return error(.tooLarge, tooLarge)
        case CURLE_ABORTED_BY_CALLBACK:
            return error(.aborted, "the request to \(host) was abandoned: the client went away")
        default:
            return error(.protocol, "the HTTPS exchange with \(host) failed (\(detail)): check the URL")
        }
    }

    private func set(_ option: CURLoption, _ value: Int) throws(HTTPSError) {
        try check(CCurl_easy_setopt_long(easy, option, value), option: option)
    }

    private func set(_ option: CURLoption, _ value: String) throws(HTTPSError) {
        try check(CCurl_easy_setopt_string(easy, option, value), option: option)
    }

    private func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) throws(HTTPSError) {
        try check(CCurl_easy_setopt_pointer(easy, option, pointer), option: option)
    }

    private func check(_ code: CURLcode, option: Any) throws(HTTPSError) {
        guard code == CURLE_OK else {
            let name = String(describing: option)
            throw HTTPSError(kind: code == CURLE_URL_MALFORMAT ? .invalidInput : .protocol, url: url,
                             detail: String(cString: curl_easy_strerror(code)),
                             hint: "libcurl refused option \(name): \(String(cString: curl_easy_strerror(code)))")
        }
    }
}

private func milliseconds(_ seconds: Double) -> Int { max(1, Int((seconds * 1000).rounded())) }

private func seconds(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String((value * 10).rounded() / 10)
}

/// application/x-www-form-urlencoded (and URL query) encoding: everything but RFC 3986's
/// unreserved characters is percent-encoded as UTF-8, so `+`, `&`, `=` in a secret survive.
public enum FormEncoding {
    /// `name=value&name=value`, each part escaped.
    public static func encode(_ fields: [(String, String)]) -> String {
        fields.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    /// One part, escaped (ASCII letters, digits and `-._~` stay as they are).
    public static func escape(_ value: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
