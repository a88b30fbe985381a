package topics

// PrefixAudit is the prefix of an audit result publication: auditors
// publish signed results of /satchel/audit/1.0.0 on the one topic made of
// this byte alone, AuditTopic. The prefix table (topic.go) names it
// reserved, since no requirement descriptors follow it.
const PrefixAudit Prefix = 0x0a

// AuditTopic is the gossipsub topic audit results are published on: the
// hex of PrefixAudit, "0a".
const AuditTopic = "0a"
