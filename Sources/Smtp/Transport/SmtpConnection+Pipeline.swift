// Bulk sending over one SmtpConnection: messages back to back, each one's content
// in the same write as the next one's command group (RFC 2920).
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

extension SmtpConnection {
    /// Sends messages back to back. With PIPELINING, each message's content and end of
    /// data go out in the same write as the next message's RSET/MAIL/RCPT/DATA (RFC 2920
    /// 3.1 lets message content start a group): one round trip per message. Without it,
    /// one `send` after another.
    ///
    /// - Returns: how many items were handled (each reported through `result`); fewer
    ///   than `items.count` only when the connection broke, so the caller can go on
    ///   with the rest over a new connection.
    func sendBatch(_ items: ArraySlice<SmtpClient.Outgoing>, result: (Int, Result<SmtpDeliveryReport, SmtpError>) -> Void) -> Int {
        let base = items.startIndex
        guard capabilities.pipelining else {
            var handled = 0
            for index in items.indices {
                if isBroken || isClosed { break }
                do { result(index, .success(try send(envelope: items[index].envelope, message: items[index].message))) }
                catch let error as SmtpError { result(index, .failure(error)) }
                catch { result(index, .failure(makeError(stage: .mail, kind: .protocol, hint: "\(error)"))) }
                handled += 1
            }
            return handled
        }
        guard !isBroken, !isClosed else { return 0 }
        inMessage = true
        defer { inMessage = false }
        let enhanced = capabilities.enhancedStatusCodes
        // The message whose content is written with the next group, and its outcomes.
        var pendingContent: [UInt8] = []
        var inFlight: (index: Int, transaction: Transaction, outcomes: [SmtpRecipientOutcome], start: Int)?
        var emptyDataInFlight = false
        var next = base
        while true {
            // The next message that passes the local checks.
            var current: (index: Int, transaction: Transaction, start: Int)?
            while current == nil && next < items.endIndex {
                let index = next
                next += 1
                let start = messagesStarted == 0 ? 0 : recorder.beginMessage()
                do {
                    current = (index, try prepareTransaction(envelope: items[index].envelope, message: items[index].message), start)
                } catch let error as SmtpError {
                    result(index, .failure(error))
                } catch {
                    result(index, .failure(makeError(stage: .mail, kind: .protocol, hint: "\(error)")))
                }
            }
            if current == nil && pendingContent.isEmpty { break }
            deadline = Deadline.after(seconds: settings.sessionTimeout)
            var bytes = pendingContent
            pendingContent = []
            if let current { bytes += commandGroup(current.transaction) }
            do {
                try write(bytes, stage: current == nil ? .data : .mail, command: current == nil ? "end of data" : "MAIL FROM")
                if let sent = inFlight {
                    inFlight = nil
                    let final = try readReply(stage: .data, command: "end of data", enhanced: enhanced)
                    if final.code == 250 {
                        result(sent.index, .success(report(outcomes: sent.outcomes, final: final, transaction: sent.transaction, transcriptStart: sent.start)))
                    } else {
                        result(sent.index, .failure(replyError(final, stage: .data)))
                    }
                } else if emptyDataInFlight {
                    emptyDataInFlight = false
                    _ = try readReply(stage: .data, command: "end of data", enhanced: enhanced)
                }
                guard let current else { continue }
                let replies = try readGroupReplies(current.transaction)
                if replies.data.code == 354 && !replies.transactionValid {
                    recorder.client(".")
                    pendingContent = Array(".\r\n".utf8)
                    emptyDataInFlight = true
                }
                do {
                    let outcomes = try evaluate(replies, current.transaction)
                    recordContent(current.transaction)
                    pendingContent = current.transaction.prepared.payload
                    inFlight = (current.index, current.transaction, outcomes, current.start)
                } catch let error as SmtpError {
                    result(current.index, .failure(error))
                }
            } catch {
                // The connection broke: what was in flight failed with it.
                let failure = error as? SmtpError ?? makeError(stage: .data, kind: .protocol, hint: "\(error)")
                if let sent = inFlight {
                    // Its content went out with this write or its reply was awaited: a data failure.
                    var dataFailure = failure
                    if dataFailure.stage == .mail { dataFailure.stage = .data }
                    result(sent.index, .failure(dataFailure))
                }
                if let current { result(current.index, .failure(failure)) }
                return next - base
            }
        }
        return next - base
    }
}
