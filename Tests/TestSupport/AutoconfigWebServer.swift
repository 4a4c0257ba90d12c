import Foundation

/// An nginx on 127.0.0.1 serving autoconfig documents over HTTPS, one folder per host
/// name (`root <dir>/$host`), with SmtpTestCertificates' `discovery` certificate (the
/// test domains, `*.<domain>` and localhost, issued by the test CA). Tests write the
/// documents with ``put(host:path:_:)``; discovery reaches it by the host names its DNS
/// resolves to 127.0.0.1 and the port it is told. Stopped by `stop()` or on deinit.
///
/// ```swift
/// let web = try AutoconfigWebServer()
/// try web.put(host: "autoconfig.ac.example.test", path: "/mail/config-v1.1.xml", xml)
/// // GET https://autoconfig.ac.example.test:\(web.port)/mail/config-v1.1.xml, CA web.caFile
/// ```
public final class AutoconfigWebServer: Sendable {
    /// The HTTPS port.
    public let port: Int
    /// The CA that issued the certificate.
    public let caFile: String
    private let directory: TemporaryDirectory
    private let process: ManagedProcess

    /// Starts nginx (foreground, no master process) and waits until it accepts connections.
    public init(certificate: String = "discovery") throws {
        let certificates = try SmtpTestCertificates.shared()
        caFile = certificates.certificate("ca")
        directory = try TemporaryDirectory(prefix: "autoconfig-nginx")
        port = try Self.freePort()
        let state = directory.path
        try FileManager.default.createDirectory(atPath: state + "/sites", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: state + "/tmp", withIntermediateDirectories: true)
        let conf = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(state)/nginx.pid;
            error_log \(state)/error.log warn;
            events { worker_connections 64; }
            http {
                access_log off;
                client_body_temp_path \(state)/tmp/body;
                proxy_temp_path \(state)/tmp/proxy;
                fastcgi_temp_path \(state)/tmp/fastcgi;
                uwsgi_temp_path \(state)/tmp/uwsgi;
                scgi_temp_path \(state)/tmp/scgi;
                types { application/xml xml; }
                default_type application/octet-stream;
                server {
                    listen 127.0.0.1:\(port) ssl;
                    server_name _;
                    ssl_certificate \(certificates.certificate(certificate));
                    ssl_certificate_key \(certificates.key(certificate));
                    root \(state)/sites/$host;
                    location = /redirect/mail/config-v1.1.xml { return 302 https://elsewhere.example.test/mail/config-v1.1.xml; }
                }
            }
            """
        try conf.write(toFile: state + "/nginx.conf", atomically: true, encoding: .utf8)
        process = try ManagedProcess(executable: "/usr/sbin/nginx", arguments: ["-p", state, "-e", state + "/error.log", "-c", state + "/nginx.conf"])
        let end = Date().addingTimeInterval(10)
        while !Self.accepts(port) {
            guard Date() < end else {
                let log = (try? String(contentsOfFile: state + "/error.log", encoding: .utf8)) ?? ""
                throw ManagedProcess.Failure(message: "nginx did not listen on \(port) within 10 s", stderr: log + process.stderrText)
            }
            usleep(50_000)
        }
    }

    deinit { stop() }

    /// Stops nginx.
    public func stop() { process.stop() }

    /// Writes `contents` as the file at `path` for requests to `host`.
    public func put(host: String, path: String, _ contents: String) throws {
        let file = directory.path + "/sites/" + host.lowercased() + path
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
    }

    /// An autoconfig document with one SMTP server, naming `domains`.
    public static func document(domains: [String], host: String, port: Int, socketType: String,
                                authentication: String = "password-cleartext", username: String = "%EMAILADDRESS%") -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <clientConfig version="1.1">
          <emailProvider id="\(domains.first ?? "")">
            \(domains.map { "<domain>\($0)</domain>" }.joined(separator: "\n    "))
            <displayName>Test mail</displayName>
            <incomingServer type="imap"><hostname>imap.\(domains.first ?? "")</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
            <!-- the SMTP server -->
            <outgoingServer type="smtp">
              <hostname>\(host)</hostname>
              <port>\(port)</port>
              <socketType>\(socketType)</socketType>
              <authentication>\(authentication)</authentication>
              <username>\(username)</username>
            </outgoingServer>
          </emailProvider>
        </clientConfig>
        """
    }

    /// The classic "billion laughs" document: ten levels of ten-fold entity expansion.
    public static let billionLaughs: String = {
        var lines = ["<?xml version=\"1.0\"?>", "<!DOCTYPE clientConfig [", "  <!ENTITY lol \"lol\">"]
        for level in 1...9 {
            let previous = level == 1 ? "lol" : "lol\(level - 1)"
            lines.append("  <!ENTITY lol\(level) \"" + String(repeating: "&\(previous);", count: 10) + "\">")
        }
        lines.append("]>")
        lines.append("<clientConfig version=\"1.1\"><emailProvider id=\"x\"><domain>&lol9;</domain></emailProvider></clientConfig>")
        return lines.joined(separator: "\n")
    }()

    private static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw ManagedProcess.Failure(message: "no free port", stderr: "") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
