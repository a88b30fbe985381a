package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newObjectCmd) }

func newObjectCmd(app *App) *cobra.Command {
	return groupCmd("object", "Show the data objects of a bag", "",
		newObjectShowCmd(app), newObjectListCmd(app))
}

func objectRow(o chain.DataObject) []string {
	state := "pending"
	if o.Accepted {
		state = "accepted"
	}
	return []string{o.ID.String(), strconv.FormatUint(o.Size, 10), o.ContentID, state}
}

func newObjectShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "show [BAG] OBJECT",
		Short: "Show a data object: its bag, size, content ID, accepted or pending",
		Long: `Show a data object. Object IDs are unique across bags, so the ID alone finds
it (as satchel get does); naming its bag too reads it from that bag, which a
chain started before the object-ID index needs for its older objects.`,
		Example: `  satchel object show 12
  satchel object show dynamic:channel:7 12 --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var bag chain.BagID
			if len(args) == 2 {
				var err error
				if bag, err = chain.ParseBagID(args[0]); err != nil {
					return err
				}
			}
			id, err := chain.ParseObjectID(args[len(args)-1])
			if err != nil {
				return err
			}
			o, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) (chain.DataObject, error) {
				if bag == "" {
					return readObjectByID(ctx, c, id)
				}
				return readObject(ctx, c, bag, id)
			})
			if err != nil {
				return err
			}
			return app.Printer().Print(o, func(w io.Writer) error {
				r := objectRow(o)
				rows := [][]string{
					{"bag", o.Bag.String()},
					{"size", fmt.Sprintf("%s (%s)", r[1], formatBytes(o.Size))},
					{"content ID", o.ContentID},
					{"state", r[3]},
					{"created at block", strconv.FormatInt(o.CreatedAt, 10)},
				}
				if !o.Accepted && o.ExpiresAt > 0 {
					rows = append(rows, []string{"expires after block", strconv.FormatInt(o.ExpiresAt, 10) + " unless accepted"})
				}
				return Table(w, []string{"OBJECT", o.ID.String()}, rows)
			})
		},
	}
}

// readObject reads object id of bag. The chain says only that the object
// does not exist when its bag does not either; then the missing bag is the
// error, the mistake to fix.
func readObject(ctx context.Context, c *chain.Client, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	o, err := c.DataObject(ctx, bag, id)
	if errors.Is(err, chain.ErrObjectNotFound) {
		if _, berr := c.Bag(ctx, bag); errors.Is(berr, chain.ErrBagNotFound) {
			return o, berr
		}
	}
	return o, err
}

// readObjectByID reads object id from whichever bag holds it. A chain
// started before the object-ID index answers a plain not-found for an
// object the index lacks: the bag must be named then.
func readObjectByID(ctx context.Context, c *chain.Client, id chain.ObjectID) (chain.DataObject, error) {
	o, err := c.ObjectByID(ctx, id)
	if err != nil && !errors.Is(err, chain.ErrObjectNotFound) && errors.Is(err, chain.ErrNotFound) {
		return o, fmt.Errorf("data object %d: not in the chain's object-ID index (a chain started before it): name its bag, `satchel object show BAG %d`", id, id)
	}
	return o, err
}

func newObjectListCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "list BAG",
		Short:   "List the data objects of a bag",
		Example: `  satchel object list dynamic:channel:7`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bag, err := chain.ParseBagID(args[0])
			if err != nil {
				return err
			}
			objs, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) ([]chain.DataObject, error) {
				return c.Objects(ctx, bag)
			})
			if err != nil {
				return err
			}
			objs = nonNil(objs)
			return app.Printer().Print(objs, func(w io.Writer) error {
				if len(objs) == 0 {
					_, err := fmt.Fprintf(w, "bag %s has no data objects\n", bag)
					return err
				}
				rows := make([][]string, len(objs))
				for i, o := range objs {
					rows[i] = objectRow(o)
				}
				return Table(w, []string{"OBJECT", "SIZE", "CONTENT ID", "STATE"}, rows)
			})
		},
	}
}
