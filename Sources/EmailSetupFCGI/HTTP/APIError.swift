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

/// Every failure the API reports, as a value: the HTTP status and the field (or
/// topic) errors of the envelope `{"status":"error","errors":{…}}`.
///
/// Handlers throw `APIError` for what they refuse themselves; the errors of the other
/// modules (Storage, Smtp, the settings) become HTTP in one place, `ErrorResponses`.
struct APIError: Error, Sendable, Equatable {
    /// The HTTP status code.
    var status: Int
    /// Field or topic → message; every problem at once for validation failures.
    var errors: [(String, String)]
    /// Extra response headers (Allow, Retry-After, ETag, WWW-Authenticate).
    var headers: [(String, String)] = []

    static func == (a: APIError, b: APIError) -> Bool {
        a.status == b.status && a.errors.map { "\($0.0)=\($0.1)" } == b.errors.map { "\($0.0)=\($0.1)" }
    }

    init(status: Int, errors: [(String, String)], headers: [(String, String)] = []) {
        self.status = status
        self.errors = errors
        self.headers = headers
    }

    init(_ status: Int, _ topic: String, _ message: String, headers: [(String, String)] = []) {
        self.init(status: status, errors: [(topic, message)], headers: headers)
    }

    static func badRequest(_ field: String, _ message: String) -> APIError { APIError(400, field, message) }
    static let notFound = APIError(404, "request", "No such API endpoint.")
    static func methodNotAllowed(_ allowed: [String]) -> APIError {
        APIError(405, "request", "Method not allowed here; use \(allowed.joined(separator: " or ")).",
                 headers: [("Allow", allowed.joined(separator: ", "))])
    }
    static let payloadTooLarge = APIError(413, "request", "The request body is larger than 64 KiB.")
    static let unauthenticated = APIError(401, "auth", "Authentication required: the web server passed no REMOTE_USER.")
    static let databaseUnavailable = APIError(503, "database", "The settings database is unreachable; try again shortly.",
                                              headers: [("Retry-After", "5")])

    /// The JSON error envelope.
    var response: Response {
        .json(status, .object([("status", "error"),
                               ("errors", .object(errors.map { ($0.0, .string($0.1)) }))]),
              headers: headers)
    }
}

/// Formats and parses the settings version as an HTTP entity tag.
enum ETag {
    /// `"7"` — a strong entity tag for settings version 7.
    static func format(_ version: Int) -> String { "\"\(version)\"" }

    /// The version an If-Match header names: `"7"`, `W/"7"` or bare `7`; `*` or
    /// an absent header means "any" (nil). Throws a 400 when it is not a version.
    static func expectedVersion(ifMatch: String?) throws -> Int? {
        guard var value = ifMatch?.trimmingSpaces(), !value.isEmpty, value != "*" else { return nil }
        if value.hasPrefix("W/") { value.removeFirst(2) }
        if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
        guard let version = Int(value), version >= 0 else {
            throw APIError(400, "If-Match", "If-Match must be the ETag of GET /api/setup/email_smtp, such as \"3\".")
        }
        return version
    }
}
