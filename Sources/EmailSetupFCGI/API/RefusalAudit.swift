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
import Storage

extension APIHandler {
    /// Audits a refused request (429 rate limit, 403 not an administrator or CSRF) as
    /// one row per action, outcome, user and minute with a count, so a flood of
    /// refusals cannot flood the audit log.
    ///
    /// Never fails the request: the refusal is the answer whatever happens here. A
    /// database that is away counts toward the outage log like any failed request;
    /// any other storage error is logged.
    /// - Parameters:
    ///   - action: e.g. `test.send`, `access.refused`.
    ///   - outcome: e.g. `rate_limited`, `not_admin`, `csrf`.
    ///   - actor: the user as the web server named it (`anonymous` when none).
    ///   - version: the settings version concerned, if any.
    ///   - detail: JSON members of the first refusal of the minute; never a secret.
    func auditRefusal(_ action: String, _ outcome: String, _ actor: String, _ request: Request, _ version: Int?,
                      detail: [(String, JSONValue)]) {
        let text = String(decoding: JSONValue.object(detail).serialized(), as: UTF8.self)
        do {
            try repository.appendAggregatedAudit(action: action, outcome: outcome, actor: String(actor.prefix(191)),
                                                 remoteAddress: request.remoteAddress, detail: text, settingsVersion: version)
        } catch let error as StorageError where error.code == .unavailable {
            storageOutage.requestFailed(error: error, path: request.path)
        } catch {
            logger.warning("could not audit a refused request", metadata: ["error": "\(error)", "action": "\(action)", "outcome": "\(outcome)"])
        }
    }
}
