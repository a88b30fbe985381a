package main

// `satchel storage operator`: a storage bucket operator's transactions:
// accepting an invitation, publishing node metadata, accepting objects.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerStorageCommand(newStorageOperatorCmd) }

func newStorageOperatorCmd(app *App) *cobra.Command {
	return groupCmd("operator", "Storage operator duties: accept an invitation, publish metadata, accept objects",
		`Commands of a storage bucket operator (a storage worker). They sign with the
worker's role account key: -k/--key PATH, key in the config, or the account key
under the home.`,
		newStorageAcceptInvitationCmd(app),
		newStorageSetMetadataCmd(app),
		newStorageAcceptObjectsCmd(app),
	)
}

func newStorageAcceptInvitationCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	var worker *valueFlag[chain.WorkerID]
	transactor := newFlag("", chain.Account(""), chain.ParseAccount, "account")
	return txCommand{
		use:   "accept-invitation -i BUCKET -w WORKER [-t ACCOUNT]",
		short: "Accept a pending storage bucket invitation. Requires the invited worker's key",
		long: `Accept the storage lead's invitation to operate a bucket, signed with the
invited worker's role account key. -t names the transactor: the account the
node uses to accept pending data objects (default: the role account).`,
		example: `  satchel storage operator accept-invitation -i 3 -w 0 -y
  satchel storage operator accept-invitation -i 3 -w 0 -t 5f2c...e1 -k worker.key`,
		flags: func(cmd *cobra.Command) {
			bucket = storageBucketFlag(cmd)
			worker = workerFlag(cmd, "the invited storage worker (required)", true)
			cmd.Flags().VarP(transactor, "transactor", "t", "account that will accept pending data objects (default: the worker's role account)")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgAcceptStorageBucketInvitation{Bucket: bucket.value, Worker: worker.value, Transactor: transactor.value}
			action := fmt.Sprintf("Accept the invitation of storage worker %d to operate storage bucket %d", m.Worker, m.Bucket)
			if m.Transactor != "" {
				action += ", with transactor account " + string(m.Transactor)
			}
			return tx{role: accountRole, msg: m, action: action,
				done: func(ev []chain.Event) (string, map[string]any) {
					tr := m.Transactor
					if a, ok := chain.FindEvent[chain.StorageInvitationAccepted](ev); ok {
						tr = a.Transactor
					}
					return fmt.Sprintf("storage worker %d now operates storage bucket %d (transactor %s)", m.Worker, m.Bucket, tr),
						map[string]any{"bucket": m.Bucket, "worker": m.Worker, "transactor": tr}
				}}, nil
		},
	}.command(app)
}

func newStorageSetMetadataCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	var worker *valueFlag[chain.WorkerID]
	var input, peerID, location, extra string
	var addrs []string
	coords := newFlag("", (*chain.Coordinates)(nil), parseCoordinates, "lat,lon")
	return txCommand{
		use:   "set-metadata -i BUCKET -w WORKER [-j FILE] [--peer-id ID] [--addr MULTIADDR]... [--location CC[,CITY]]",
		short: "Publish a storage operator's node metadata. Requires the operator's key",
		long: `Publish what clients need to reach the operator's storage node: its libp2p peer
ID, its multiaddrs and its location. -j reads the metadata from a JSON file:

  {"peerId": "12D3KooW...", "multiaddrs": ["/ip4/1.2.3.4/tcp/4001"],
   "location": {"countryCode": "NO", "city": "Oslo",
                "coordinates": {"latitude": 59.9, "longitude": 10.7}},
   "extra": "..."}

Flags override the file's fields. Setting metadata replaces the previous.`,
		example: `  satchel storage operator set-metadata -i 3 -w 0 --peer-id 12D3KooWQ... --addr /ip4/1.2.3.4/tcp/4001 --location NO,Oslo -y
  satchel storage operator set-metadata -i 3 -w 0 -j metadata.json`,
		flags: func(cmd *cobra.Command) {
			bucket = storageBucketFlag(cmd)
			worker = workerFlag(cmd, "the operator (storage worker) (required)", true)
			cmd.Flags().StringVarP(&input, "input", "j", "", "path to a JSON metadata file")
			cmd.Flags().StringVar(&peerID, "peer-id", "", "libp2p peer ID of the storage node")
			cmd.Flags().StringArrayVar(&addrs, "addr", nil, "multiaddr the node listens on (repeat for several)")
			cmd.Flags().StringVar(&location, "location", "", "ISO country code and optional city, e.g. NO,Oslo")
			cmd.Flags().Var(coords, "coordinates", "latitude,longitude in degrees, e.g. 59.91,10.75")
			cmd.Flags().StringVar(&extra, "extra", "", "free text")
		},
		build: func(cmd *cobra.Command, _ []string) (tx, error) {
			var md chain.StorageOperatorMetadata
			if input != "" {
				if err := readJSONFile(input, &md); err != nil {
					return tx{}, err
				}
			}
			fl := cmd.Flags()
			if fl.Changed("peer-id") {
				md.PeerID = peerID
			}
			if fl.Changed("addr") {
				md.Multiaddrs = addrs
			}
			if fl.Changed("extra") {
				md.Extra = extra
			}
			if fl.Changed("location") || fl.Changed("coordinates") {
				if md.Location == nil {
					md.Location = &chain.Location{}
				}
			}
			if fl.Changed("location") {
				cc, city, _ := strings.Cut(location, ",")
				md.Location.CountryCode, md.Location.City = strings.ToUpper(strings.TrimSpace(cc)), strings.TrimSpace(city)
			}
			if fl.Changed("coordinates") {
				md.Location.Coordinates = coords.value
			}
			if input == "" && !fl.Changed("peer-id") && !fl.Changed("addr") && !fl.Changed("location") && !fl.Changed("coordinates") && !fl.Changed("extra") {
				return tx{}, fmt.Errorf("give the metadata: -j FILE, or --peer-id, --addr, --location, --coordinates, --extra")
			}
			m := chain.MsgSetStorageOperatorMetadata{Bucket: bucket.value, Worker: worker.value, Metadata: md}
			b, _ := json.Marshal(md)
			return tx{role: accountRole, msg: m,
				action: fmt.Sprintf("Set the metadata of storage worker %d for storage bucket %d to %s", m.Worker, m.Bucket, b),
				done: doneLine(fmt.Sprintf("storage worker %d set the metadata of storage bucket %d", m.Worker, m.Bucket),
					map[string]any{"bucket": m.Bucket, "worker": m.Worker, "metadata": md})}, nil
		},
	}.command(app)
}

func parseCoordinates(s string) (*chain.Coordinates, error) {
	la, lo, ok := strings.Cut(s, ",")
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(la), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%q: want latitude,longitude such as 59.91,10.75", s)
	}
	return &chain.Coordinates{Latitude: lat, Longitude: lon}, nil
}

func newStorageAcceptObjectsCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	var worker *valueFlag[chain.WorkerID]
	var bag *valueFlag[chain.BagID]
	objects := newListFlag(chain.ParseObjectID, "objectIds")
	return txCommand{
		use:   "accept-objects -i BUCKET -w WORKER -b BAG -o OBJECTS",
		short: "Accept pending data objects the node holds. Requires the operator's transactor key",
		long: `Mark pending data objects of a bag accepted: the operator's node holds their
data. Signed by the operator's transactor account (or its role account); the
bucket must store the bag. Objects already accepted are skipped.`,
		example: `  satchel storage operator accept-objects -i 3 -w 0 -b dynamic:channel:7 -o 12,13 -y`,
		flags: func(cmd *cobra.Command) {
			bucket = storageBucketFlag(cmd)
			worker = workerFlag(cmd, "the operator (storage worker) (required)", true)
			bag = bagFlag(cmd)
			cmd.Flags().VarP(objects, "objects", "o", "data object IDs to accept (repeat or comma-separate) (required)")
			requiredFlags(cmd, "objects")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgAcceptPendingDataObjects{Bucket: bucket.value, Worker: worker.value, Bag: bag.value, Objects: objects.values}
			return tx{role: accountRole, msg: m,
				action: fmt.Sprintf("Accept pending data objects %s of bag %s in storage bucket %d (worker %d)", joinIDs(m.Objects), m.Bag, m.Bucket, m.Worker),
				done: func(ev []chain.Event) (string, map[string]any) {
					acc := []chain.ObjectID{}
					if a, ok := chain.FindEvent[chain.ObjectsAccepted](ev); ok {
						acc = nonNil(a.Objects)
					}
					line := fmt.Sprintf("accepted data objects %s of bag %s", joinIDs(acc), m.Bag)
					if len(acc) == 0 {
						line = fmt.Sprintf("no pending objects among %s of bag %s: nothing to accept", joinIDs(m.Objects), m.Bag)
					}
					return line, map[string]any{"bag": m.Bag, "bucket": m.Bucket, "accepted": acc}
				}}, nil
		},
	}.command(app)
}
