package topics

// Names returns the name of every gossipsub topic Satchel uses, in a fixed
// order: the 81 contract topics (every descriptor of every criterion, in
// lower-case hex, as String writes them) and then AuditTopic. A Satchel node
// joins no other topic, and package p2p ignores a peer's subscription to
// any other, so a peer cannot grow a node's table of topics with made-up
// names. A new publication type adds its topics here.
func Names() []string {
	names := make([]string, 0, 3*3*3*3+1)
	for s := Low; s <= High; s++ {
		for d := Low; d <= High; d++ {
			for a := Low; a <= High; a++ {
				for sp := Low; sp <= High; sp++ {
					names = append(names, New(s, d, a, sp).String())
				}
			}
		}
	}
	return append(names, AuditTopic)
}
