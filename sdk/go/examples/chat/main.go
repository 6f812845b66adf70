// Command chat is a terminal chat room on a Tandem channel, built with the
// Go SDK: it shows the room's recent history, then live messages and who
// joins or leaves, and publishes every line you type. It keeps going across
// server restarts (the SDK reconnects and resumes).
//
//	go run github.com/tandemhq/tandem/sdk/go/examples/chat -name alice -room lobby
//
// (from the repository root; in sdk/go, go run ./examples/chat). Run it
// in two terminals (or next to the browser console at
// http://127.0.0.1:8080/) against `make run`.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/sdk/go/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// message is what the chat publishes on the channel.
type message struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// run joins the room and chats until stdin ends or ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr(getenv, "TANDEM_URL", "http://127.0.0.1:8080"), "Tandem server URL (TANDEM_URL)")
	token := fs.String("token", getenv("TANDEM_TOKEN"), "bearer token (TANDEM_TOKEN)")
	room := fs.String("room", "lobby", "room name (channel chat:<room>)")
	name := fs.String("name", envOr(getenv, "USER", "guest"), "your name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	channel := "chat:" + *room
	var out sync.Mutex
	say := func(format string, a ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	opts := []tandem.Option{tandem.WithStatus(func(s tandem.Status) {
		switch s.State {
		case tandem.StateDisconnected:
			fmt.Fprintf(stderr, "* connection lost (%v); retrying in %v\n", s.Err, s.Delay.Round(time.Millisecond))
		case tandem.StateConnected:
			fmt.Fprintln(stderr, "* connected")
		}
	})}
	if *token != "" {
		opts = append(opts, tandem.WithToken(*token))
	}
	c, err := tandem.New(*url, opts...)
	if err != nil {
		return err
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	// Who is here: the presence state, then joins and leaves.
	var presence tandem.PresenceState
	_, err = conn.SubscribeFunc(ctx, tandem.PresenceTopic(channel), nil, func(ev tandem.Event) {
		if !presence.Apply(ev) {
			return
		}
		switch ev.Action {
		case "state":
			say("* here: %s", strings.Join(names(presence.Members()), ", "))
		case "join":
			say("* %s joined", strings.Join(names(ev.Members), ", "))
		case "leave":
			say("* %s left", strings.Join(names(ev.Members), ", "))
		}
	})
	if err != nil {
		return err
	}
	// The room's recent history, then live messages; joining with our name
	// as presence metadata. AutoResync reloads the history if the server
	// lost it (e.g. a restart without Redis).
	_, err = conn.SubscribeFunc(ctx, tandem.ChannelTopic(channel), &tandem.SubscribeOptions{
		Snapshot: true, AutoResync: true, Meta: map[string]string{"name": *name},
	}, func(ev tandem.Event) {
		if ev.Type != tandem.TypeEvent || ev.Message == nil {
			return
		}
		var m message
		if json.Unmarshal(ev.Message.Data, &m) != nil || m.Text == "" {
			return
		}
		say("[%s] %s: %s", ev.Message.Time.Local().Format("15:04:05"), m.Name, m.Text)
	})
	if err != nil {
		return err
	}

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conn.Done():
			return conn.Err()
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			_, err := conn.Publish(ctx, channel, message{Name: *name, Text: line})
			if errors.Is(err, tandem.ErrConnectionLost) {
				fmt.Fprintln(stderr, "* not sent (connection lost); type it again")
			} else if err != nil {
				return err
			}
		}
	}
}

// names are the display names of members: their presence "name", else id.
func names(ms []client.PresenceMember) []string {
	var out []string
	for _, m := range ms {
		n := m.Id
		for _, c := range m.Connections {
			var meta struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(c.Meta, &meta) == nil && meta.Name != "" {
				n = meta.Name
				break
			}
		}
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"nobody"}
	}
	return out
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
