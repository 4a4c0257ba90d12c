import Logging
import Smtp
import Storage

/// Every error → HTTP status and envelope, in one place: what each module throws and
/// what the API answers for it.
///
/// | error | status |
/// |---|---|
/// | `APIError` | its own (the handlers' refusals: 401, 403, 404, 405, 413, 429, 503…) |
/// | `JSONValue.ParseError`, `SettingsRefusal` | 400, every field error at once |
/// | `EmailSettings.Incomplete` (settings never saved, a saved value that no longer parses) | 409 |
/// | `StorageError` | 503 unreachable, 409 conflict, 404 no such version, else 500 |
/// | `SmtpError` | 504 timeout, 400 input refused before anything was sent, else 502, with the diagnosis |
/// | anything else | 500, logged |
enum ErrorResponses {
    /// The answer for `error`; unexpected errors and storage failures are logged.
    static func response(for error: any Error, logger: Logger) -> Response {
        switch error {
        case let error as SmtpError:
            return diagnosis(error, version: nil)
        case let error as StorageError:
            let apiError = self.apiError(error)
            if apiError.status >= 500, error.code != .unavailable { logger.error("storage failure", metadata: ["error": "\(error)"]) }
            return apiError.response
        default:
            guard let apiError = known(error) else {
                logger.error("unexpected failure", metadata: ["error": "\(error)"])
                return APIError(500, "server", "Internal error; the server log has details.").response
            }
            return apiError.response
        }
    }

    /// The `APIError` of every error that is not a surprise; nil for the others.
    static func known(_ error: any Error) -> APIError? {
        switch error {
        case let error as APIError: return error
        case let error as JSONValue.ParseError: return APIError.badRequest("body", "The body is not valid JSON: \(error).")
        case let error as SettingsRefusal: return APIError(status: 400, errors: error.errors)
        case let error as EmailSettings.Incomplete: return APIError(409, error.field, error.message)
        case let error as StorageError: return apiError(error)
        default: return nil
        }
    }

    /// A Storage error: unreachable database → 503, version conflict → 409, a missing
    /// history version → 404, anything else → 500 (details are logged, not sent).
    static func apiError(_ error: StorageError) -> APIError {
        switch error.code {
        case .unavailable:
            guard error.setting != nil else { return .databaseUnavailable }
            // A refusal that a setting causes (e.g. an untrusted database certificate):
            // its one line says which.
            return APIError(503, "database", "The settings database cannot be reached: \(error.message).",
                            headers: APIError.databaseUnavailable.headers)
        case .conflict:
            let current = error.currentVersion ?? 0
            return APIError(409, "version", "Someone else saved these settings (now version \(current)); reload them and apply your change again.",
                            headers: [("ETag", ETag.format(current))])
        case .notFound:
            return APIError(404, "version", error.message)
        default:
            return APIError(500, "server", "Internal error while reading or writing the settings; the server log has details.")
        }
    }

    /// The HTTP status of a failed SMTP session: 504 for a timeout, 400 for input refused
    /// before anything reached the wire (e.g. a stored CA bundle OpenSSL cannot load),
    /// 502 for every other failure.
    static func status(of error: SmtpError) -> Int {
        error.kind == .timeout ? 504 : (error.kind == .invalidInput ? 400 : 502)
    }

    /// A failed test email, check or OAuth step: `errors.smtp` = the hint, and the
    /// diagnosis (``SmtpJSON/diagnosis(_:)``) with the settings version it used.
    static func diagnosis(_ error: SmtpError, version: Int?) -> Response {
        var members = SmtpJSON.diagnosis(error)
        if let version {
            let at = members.firstIndex { $0.0 == "certificate" } ?? members.endIndex
            members.insert(("settings_version", .string(String(version))), at: at)
        }
        return .json(status(of: error), .object([
            ("status", "error"), ("errors", .object([("smtp", .string(error.hint))])), ("diagnosis", .object(members)),
        ]))
    }
}
