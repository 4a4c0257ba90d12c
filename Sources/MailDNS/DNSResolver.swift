import CAres
#if canImport(Glibc)
import Glibc
#endif

/// A stub resolver over c-ares: asks the configured servers (or /etc/resolv.conf's
/// when `servers` is empty) with RD set; never follows CNAMEs itself beyond what the
/// server answers. Thread-safe value; every query has its own channel or lock.
///
/// This file is the only one that touches c-ares: the library is initialised once,
/// every call to ``query(_:_:)`` or ``queryAll(_:)`` opens its own channel (c-ares
/// 1.18 channels are not thread-safe), waits on its sockets with `poll` until the
/// deadline, and destroys it. Names are asked as given (`ares_query`, no search
/// list), internationalized labels mapped to A-labels first (see `DNSName`).
///
/// `timeout` is the seconds one attempt may take; a question gives up after
/// `timeout × attempts` in all, whatever the servers do.
///
/// ```swift
/// let resolver = try DNSResolver(servers: ["127.0.0.1:5353"], timeout: 1)
/// let mx = try resolver.query("example.test", .mx)      // [.mx(preference: 10, exchange: "mail.example.test")]
/// let both = resolver.queryAll([DNSQuestion(name: "_submissions._tcp.example.test", type: .srv),
///                               DNSQuestion(name: "_submission._tcp.example.test", type: .srv)])
/// ```
public struct DNSResolver: Sendable {
    /// The servers asked; empty: those of /etc/resolv.conf.
    public let servers: [DNSServerAddress]
    /// Seconds one attempt may take.
    public let timeout: Double
    /// Attempts per question (each server is tried on each).
    public let attempts: Int

    /// A resolver asking `servers` ("127.0.0.1:5353", "[::1]:53", "192.0.2.1" — port
    /// 53 by default; empty: the system's). Throws `.other` for a bad server address,
    /// a timeout outside 0.05…60 s or attempts outside 1…10, or when c-ares cannot start.
    public init(servers: [String] = [], timeout: Double = 3, attempts: Int = 2) throws(DNSError) {
        var parsed: [DNSServerAddress] = []
        for server in servers { parsed.append(try DNSServerAddress(server)) }
        guard timeout >= 0.05, timeout <= 60 else {
            throw DNSError(kind: .other, name: "timeout", type: .a, hint: "the DNS timeout must be from 0.05 to 60 seconds, not \(timeout)")
        }
        guard (1...10).contains(attempts) else {
            throw DNSError(kind: .other, name: "attempts", type: .a, hint: "DNS attempts must be from 1 to 10, not \(attempts)")
        }
        guard Self.libraryStatus == ARES_SUCCESS else {
            throw DNSError(kind: .other, name: "c-ares", type: .a,
                           hint: "the DNS library c-ares did not start: \(Self.describe(Self.libraryStatus))")
        }
        self.servers = parsed
        self.timeout = timeout
        self.attempts = attempts
    }

    /// One query; answers in the server's order. NXDOMAIN and NODATA are errors with
    /// their own kinds so callers can tell "no such name" from "no such record".
    public func query(_ name: String, _ type: DNSRecordType) throws(DNSError) -> [DNSRecord] {
        try queryAll([DNSQuestion(name: name, type: type)])[0].get()
    }

    /// Several queries at once (one c-ares channel, one poll loop), each result apart,
    /// in the order of `questions`. Takes about as long as the slowest of them.
    public func queryAll(_ questions: [DNSQuestion]) -> [Result<[DNSRecord], DNSError>] {
        if questions.isEmpty { return [] }
        let batch = Batch(questions: questions)
        let channel: OpaquePointer
        switch openChannel() {
        case .success(let opened): channel = opened
        case .failure(let error):
            return questions.map { .failure(DNSError(kind: error.kind, name: $0.name, type: $0.type, hint: error.hint)) }
        }
        defer { ares_destroy(channel) }
        batch.serverText = serverText(channel)
        batch.deadlineText = Self.seconds(timeout * Double(attempts))

        for (index, question) in questions.enumerated() {
            let ascii: String
            do throws(DNSError) {
                ascii = try DNSName.ascii(question.name, type: question.type)
            } catch {
                batch.results[index] = .failure(error)
                continue
            }
            batch.asked[index] = ascii
            batch.pending += 1
            let slot = Unmanaged.passRetained(Slot(batch: batch, index: index)).toOpaque()
            // The callback runs exactly once per query: with the answer, or with an
            // error status (ECANCELLED at the deadline, EDESTRUCTION in ares_destroy).
            ares_query(channel, ascii, Int32(ns_c_in.rawValue), question.type.code, { arg, status, _, answer, length in
                guard let arg else { return }
                let slot = Unmanaged<Slot>.fromOpaque(arg).takeRetainedValue()
                slot.batch.complete(slot.index, status: status, answer: answer, length: length)
            }, slot)
        }
        wait(channel, batch)
        return batch.results.enumerated().map { index, result in
            result ?? .failure(batch.error(index, status: ARES_ETIMEOUT))
        }
    }

    // MARK: - The channel

    /// ares_library_init, once per process (it is not thread-safe; a static let is).
    private static let libraryStatus: Int32 = ares_library_init(ARES_LIB_INIT_ALL)

    /// A channel with our timeout, attempts and servers.
    private func openChannel() -> Result<OpaquePointer, DNSError> {
        var options = ares_options()
        options.timeout = Int32(max(1, (timeout * 1000).rounded()))
        options.tries = Int32(attempts)
        // NOCHECKRESP: c-ares 1.18 otherwise drops SERVFAIL and REFUSED answers to try
        // again, and when no server is left reports ECONNREFUSED ("connection
        // refused") for them; with it the server's own code reaches the callback. The
        // answer's ID and source address are still checked (docs/DECISIONS.md).
        options.flags = ARES_FLAG_NOCHECKRESP
        var channel: OpaquePointer?
        let status = ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS)
        guard status == ARES_SUCCESS, let channel else {
            return .failure(DNSError(kind: .other, name: "", type: .a,
                                     hint: "the DNS resolver could not start: \(Self.describe(status))"
                                        + (servers.isEmpty ? " (is /etc/resolv.conf readable?)" : "")))
        }
        if !servers.isEmpty {
            let csv = servers.map(\.description).joined(separator: ",")
            let set = ares_set_servers_ports_csv(channel, csv)
            guard set == ARES_SUCCESS else {
                ares_destroy(channel)
                return .failure(DNSError(kind: .other, name: csv, type: .a,
                                         hint: "the DNS servers \(csv) could not be set: \(Self.describe(set))"))
            }
        }
        return .success(channel)
    }

    /// The servers for hints: ours, or those c-ares read from /etc/resolv.conf.
    private func serverText(_ channel: OpaquePointer) -> String {
        if !servers.isEmpty { return servers.map(\.description).joined(separator: ", ") }
        var list: UnsafeMutablePointer<ares_addr_port_node>?
        guard ares_get_servers_ports(channel, &list) == ARES_SUCCESS else { return "the system's DNS servers" }
        defer { ares_free_data(list) }
        var found: [String] = []
        var node = list
        while let current = node {
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            var address = current.pointee.addr
            let family = current.pointee.family
            _ = withUnsafePointer(to: &address) { ares_inet_ntop(family, UnsafeRawPointer($0), &text, ares_socklen_t(text.count)) }
            let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let port = current.pointee.udp_port == 0 ? 53 : Int(current.pointee.udp_port)
            found.append(family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)")
            node = current.pointee.next
        }
        return found.isEmpty ? "the system's DNS servers (none in /etc/resolv.conf)"
                             : "the system's DNS servers (\(found.joined(separator: ", ")))"
    }

    /// Runs the channel until every query has its callback or the deadline passes
    /// (then cancels what is left: ECANCELLED, reported as a timeout).
    private func wait(_ channel: OpaquePointer, _ batch: Batch) {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(timeout * Double(attempts) * 1000))
        let slots = Int(ARES_GETSOCK_MAXNUM)
        var sockets = [ares_socket_t](repeating: ARES_SOCKET_BAD, count: slots)
        while batch.pending > 0 {
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else {
                batch.deadlinePassed = true
                ares_cancel(channel)
                break
            }
            let bits = ares_getsock(channel, &sockets, Int32(slots))
            var descriptors: [pollfd] = []
            for slot in 0..<slots {
                var events: Int16 = 0
                if bits & (1 << slot) != 0 { events |= Int16(POLLIN) }
                if bits & (1 << (slot + slots)) != 0 { events |= Int16(POLLOUT) }
                if events != 0 { descriptors.append(pollfd(fd: sockets[slot], events: events, revents: 0)) }
            }
            let remainingMicroseconds = remaining.components.seconds * 1_000_000 + remaining.components.attoseconds / 1_000_000_000_000
            var limit = timeval(tv_sec: Int(remainingMicroseconds / 1_000_000), tv_usec: Int(remainingMicroseconds % 1_000_000))
            var next = timeval()
            let wait = ares_timeout(channel, &limit, &next)?.pointee ?? limit
            let milliseconds = Int32(min(Int(Int32.max), wait.tv_sec * 1000 + (wait.tv_usec + 999) / 1000))
            let ready = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
            if ready < 0 && errno != EINTR { batch.pollError = errno; ares_cancel(channel); break }
            if ready <= 0 {
                // Nothing to read: let c-ares retry or time out what is due.
                ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD)
                continue
            }
            for descriptor in descriptors where descriptor.revents != 0 {
                let readable = descriptor.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0
                let writable = descriptor.revents & Int16(POLLOUT) != 0
                ares_process_fd(channel, readable ? descriptor.fd : ARES_SOCKET_BAD, writable ? descriptor.fd : ARES_SOCKET_BAD)
            }
        }
    }

    // MARK: - Answers

    /// The state of one `queryAll` call, touched only by the thread running it
    /// (c-ares calls back from inside ares_query, ares_process_fd, ares_cancel).
    private final class Batch {
        let questions: [DNSQuestion]
        var asked: [String]
        var results: [Result<[DNSRecord], DNSError>?]
        var pending = 0
        var deadlinePassed = false
        var pollError: Int32 = 0
        var serverText = ""
        var deadlineText = ""

        init(questions: [DNSQuestion]) {
            self.questions = questions
            self.asked = questions.map(\.name)
            self.results = Array(repeating: nil, count: questions.count)
        }

        /// Records the answer (or failure) to question `index`.
        func complete(_ index: Int, status: Int32, answer: UnsafeMutablePointer<UInt8>?, length: Int32) {
            pending -= 1
            guard status == ARES_SUCCESS, let answer, length > 0 else {
                results[index] = .failure(error(index, status: status == ARES_SUCCESS ? ARES_EBADRESP : status))
                return
            }
            let (parsed, records) = DNSResolver.parse(questions[index].type, answer, length)
            if parsed != ARES_SUCCESS {
                results[index] = .failure(error(index, status: parsed))
            } else if records.isEmpty {
                results[index] = .failure(error(index, status: ARES_ENODATA))
            } else {
                results[index] = .success(records)
            }
        }

        /// The error for question `index` failing with c-ares `status`.
        func error(_ index: Int, status: Int32) -> DNSError {
            let name = asked[index], type = questions[index].type
            func make(_ kind: DNSError.Kind, _ hint: String) -> DNSError { DNSError(kind: kind, name: name, type: type, hint: hint) }
            switch status {
            case ARES_ENOTFOUND:
                return make(.nxdomain, "\(name) does not exist in DNS (NXDOMAIN): check the spelling, or publish the name at its DNS provider")
            case ARES_ENODATA:
                return make(.nodata, "\(name) exists but has no \(type) record")
            case ARES_ETIMEOUT, ARES_ECANCELLED, ARES_EDESTRUCTION:
                if pollError != 0 {
                    return make(.other, "waiting for DNS answers failed: \(String(cString: strerror(pollError)))")
                }
                return make(.timeout, "no DNS server answered at \(serverText) within \(deadlineText) s: check that the server runs and that a firewall lets DNS (port 53, UDP and TCP) through")
            case ARES_ECONNREFUSED:
                return make(.timeout, "nothing answers DNS at \(serverText) (connection refused): check the DNS server address and that the server runs")
            case ARES_EREFUSED:
                return make(.refused, "the DNS server at \(serverText) refused to answer for \(name) (REFUSED): it does not serve this name, or not to this machine; use a resolver that allows recursion from here")
            case ARES_ESERVFAIL:
                return make(.servfail, "the DNS server at \(serverText) could not get an answer for \(name) (SERVFAIL): the domain's own DNS servers may be down or its DNSSEC broken; try again later or ask the domain's DNS provider")
            case ARES_EBADRESP, ARES_EFORMERR, ARES_EBADSTR:
                return make(.malformed, "the DNS answer for \(name) \(type) from \(serverText) could not be read (\(DNSResolver.describe(status)))")
            case ARES_EBADNAME:
                return make(.badName, "\"\(name)\" cannot be looked up in DNS: it is not a valid DNS name")
            default:
                return make(.other, "asking \(serverText) for \(name) \(type) failed: \(DNSResolver.describe(status))")
            }
        }
    }

    /// Carries a batch and an index through c-ares's `void *arg`.
    private final class Slot {
        let batch: Batch
        let index: Int
        init(batch: Batch, index: Int) {
            self.batch = batch
            self.index = index
        }
    }

    /// The records of `type` in the answer; a status other than ARES_SUCCESS when it
    /// cannot be read.
    private static func parse(_ type: DNSRecordType, _ answer: UnsafeMutablePointer<UInt8>, _ length: Int32) -> (Int32, [DNSRecord]) {
        var records: [DNSRecord] = []
        switch type {
        case .a, .aaaa:
            var host: UnsafeMutablePointer<hostent>?
            let status = type == .a ? ares_parse_a_reply(answer, length, &host, nil, nil)
                                    : ares_parse_aaaa_reply(answer, length, &host, nil, nil)
            guard status == ARES_SUCCESS, let host else { return (status, []) }
            defer { ares_free_hostent(host) }
            let family = type == .a ? AF_INET : AF_INET6
            var index = 0
            while let list = host.pointee.h_addr_list, let address = list[index] {
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                if inet_ntop(family, address, &text, socklen_t(text.count)) != nil {
                    let string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    records.append(type == .a ? .a(string) : .aaaa(string))
                }
                index += 1
            }
        case .mx:
            var reply: UnsafeMutablePointer<ares_mx_reply>?
            let status = ares_parse_mx_reply(answer, length, &reply)
            guard status == ARES_SUCCESS else { return (status, []) }
            defer { ares_free_data(reply) }
            var node = reply
            while let current = node {
                records.append(.mx(preference: Int(current.pointee.priority), exchange: hostName(current.pointee.host)))
                node = current.pointee.next
            }
        case .srv:
            var reply: UnsafeMutablePointer<ares_srv_reply>?
            let status = ares_parse_srv_reply(answer, length, &reply)
            guard status == ARES_SUCCESS else { return (status, []) }
            defer { ares_free_data(reply) }
            var node = reply
            while let current = node {
                records.append(.srv(priority: Int(current.pointee.priority), weight: Int(current.pointee.weight),
                                    port: Int(current.pointee.port), target: hostName(current.pointee.host)))
                node = current.pointee.next
            }
        case .txt:
            var reply: UnsafeMutablePointer<ares_txt_ext>?
            let status = ares_parse_txt_reply_ext(answer, length, &reply)
            guard status == ARES_SUCCESS else { return (status, []) }
            defer { ares_free_data(reply) }
            // Each node is one character-string; record_start marks a new record,
            // the rest continue it (a DKIM key split into 255-octet strings).
            var texts: [[UInt8]] = []
            var node = reply
            while let current = node {
                let bytes = current.pointee.txt.map { Array(UnsafeBufferPointer(start: $0, count: current.pointee.length)) } ?? []
                if current.pointee.record_start != 0 || texts.isEmpty { texts.append(bytes) } else { texts[texts.count - 1] += bytes }
                node = current.pointee.next
            }
            records = texts.map { .txt(String(decoding: $0, as: UTF8.self)) }
        case .cname:
            return cnames(answer, length)
        }
        return (ARES_SUCCESS, records)
    }

    /// The CNAME records of the answer section (c-ares 1.18 has no parser for them):
    /// walks the header, the questions and the answers, names expanded by
    /// ares_expand_name (which follows compression pointers safely).
    private static func cnames(_ answer: UnsafeMutablePointer<UInt8>, _ length: Int32) -> (Int32, [DNSRecord]) {
        let size = Int(length)
        guard size >= 12 else { return (ARES_EBADRESP, []) }
        func u16(_ at: Int) -> Int { Int(answer[at]) << 8 | Int(answer[at + 1]) }
        let questionCount = u16(4), answerCount = u16(6)
        var offset = 12
        /// Skips (and returns) the name at `offset`.
        func name() -> String? {
            var expanded: UnsafeMutablePointer<CChar>?
            var used = 0
            guard offset < size, ares_expand_name(answer + offset, answer, length, &expanded, &used) == ARES_SUCCESS,
                  let expanded else { return nil }
            defer { ares_free_string(expanded) }
            offset += used
            return String(cString: expanded)
        }
        for _ in 0..<questionCount {
            guard name() != nil, offset + 4 <= size else { return (ARES_EBADRESP, []) }
            offset += 4
        }
        var records: [DNSRecord] = []
        for _ in 0..<answerCount {
            guard name() != nil, offset + 10 <= size else { return (ARES_EBADRESP, []) }
            let type = u16(offset), dataLength = u16(offset + 8)
            offset += 10
            guard offset + dataLength <= size else { return (ARES_EBADRESP, []) }
            let end = offset + dataLength
            if type == Int(DNSRecordType.cname.code) {
                guard let target = name(), offset <= end else { return (ARES_EBADRESP, []) }
                records.append(.cname(target))
            }
            offset = end
        }
        return (ARES_SUCCESS, records)
    }

    /// A host name from c-ares, without trailing dot; the root (".", "no service"
    /// in SRV) as "".
    private static func hostName(_ text: UnsafeMutablePointer<CChar>?) -> String {
        guard let text else { return "" }
        var name = String(cString: text)
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }

    /// c-ares's own words for a status.
    private static func describe(_ status: Int32) -> String {
        guard let text = ares_strerror(status) else { return "error \(status)" }
        return String(cString: text)
    }

    /// "3", "0.5", "1.25": seconds as people write them.
    private static func seconds(_ value: Double) -> String {
        if value == value.rounded() { return String(Int(value)) }
        let hundredths = (value * 100).rounded() / 100
        return String(hundredths)
    }
}
