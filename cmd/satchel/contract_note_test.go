package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/topics"
)

// A put whose negotiation had offers but consigned none says why (a
// provider short of disk room, say), not only that none was, and what the
// put does instead.
func TestNegotiationNoteSaysWhyNoneConsigned(t *testing.T) {
	topic, err := topics.Parse("0f01020303")
	if err != nil {
		t.Fatal(err)
	}
	n := &contracts.Negotiation{Proposal: &contracts.Proposal{Topic: topic}, Offers: make([]contracts.Offer, 2)}
	why := fmt.Errorf("contracts: no contract consigned: 2 refused: %w", contracts.ErrDiskFull)
	note := negotiationNote(n, why)
	for _, want := range []string{"2 offers, none consigned", "no free disk room at the provider", "registering the object first"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q lacks %q", note, want)
		}
	}
	if note := negotiationNote(nil, errors.New("contracts: no member key")); !strings.Contains(note, "no member key; registering") {
		t.Errorf("note without a negotiation: %q", note)
	}
}
