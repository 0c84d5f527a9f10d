// Package docs holds observer's documentation. Its test runs every command
// the documentation shows, so the docs cannot drift from the binary.
//
// In a fenced block marked sh or bash, each line that starts with
// "observer", "go run ./cmd/observer" or "go run ./examples/NAME" is run
// against binaries built once, from the module root, and must exit 0.
// A comment at the end of the line changes that: "# exit N" expects exit
// code N, "# skip" does not run the line. Commands that run until stopped
// (the UI, headless without --duration) belong in text blocks.
//
// Each document runs in a sandbox: XDG_STATE_HOME and HOME point at a
// fresh directory, so the ledger's default data directory is fresh, and a
// --data-dir value is moved inside it. A postgres:// URL is replaced by a
// fresh schema of the server in OBSERVER_TEST_POSTGRES; without it those
// commands are skipped (and fail under CI=true).
package docs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// commandTimeout bounds one command; every documented command is quick.
const commandTimeout = 60 * time.Second

// envPostgres names the PostgreSQL server the ledger's tests use too.
const envPostgres = "OBSERVER_TEST_POSTGRES"

// binDir holds observer and the examples, built by TestMain.
var binDir string

var update = flag.Bool("update", false, "rewrite the generated part of reference/cli.md from the binary's help")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "observer-docs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/observer", "./examples/...")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "docs: building the binaries: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// docCommand is one runnable line of a document.
type docCommand struct {
	file string
	line int
	text string // as written, without the trailing comment
	env  []string
	args []string // argv, args[0] being "observer" or an example's name
	exit int      // expected exit code
	skip bool
}

// TestCommands runs every command of every document.
func TestCommands(t *testing.T) {
	files := markdownFiles(t)
	total := 0
	for _, file := range files {
		cmds, err := extract(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if len(cmds) == 0 {
			continue
		}
		total += len(cmds)
		t.Run(strings.TrimSuffix(file, ".md"), func(t *testing.T) {
			sb := newSandbox(t)
			for _, c := range cmds {
				t.Run(fmt.Sprintf("line %d", c.line), func(t *testing.T) { sb.run(t, c) })
			}
		})
	}
	if total == 0 {
		t.Fatal("no commands found in the documents")
	}
}

func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var fence = regexp.MustCompile("^\\s*```+\\s*(\\S*)")

// extract returns the runnable lines of a document's sh blocks.
func extract(file string) ([]docCommand, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var cmds []docCommand
	var inBlock, runnable bool
	var pending string
	pendingLine := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if m := fence.FindStringSubmatch(l); m != nil && pending == "" {
			if inBlock {
				inBlock = false
			} else {
				inBlock, runnable = true, m[1] == "sh" || m[1] == "bash"
			}
			continue
		}
		if !inBlock || !runnable {
			continue
		}
		if pending == "" {
			pendingLine = n
		}
		if s, ok := strings.CutSuffix(strings.TrimRight(l, " \t"), "\\"); ok {
			pending += s + " "
			continue
		}
		line := strings.TrimSpace(pending + l)
		pending = ""
		c, ok, err := parseCommand(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", pendingLine, err)
		}
		if ok {
			c.file, c.line = file, pendingLine
			cmds = append(cmds, c)
		}
	}
	return cmds, sc.Err()
}

// parseCommand reads one shell line; ok is false for lines that are not
// observer's or an example's.
func parseCommand(line string) (c docCommand, ok bool, err error) {
	words, comment, err := splitWords(line)
	if err != nil || len(words) == 0 {
		return c, false, err
	}
	for len(words) > 0 && isAssignment(words[0]) {
		c.env = append(c.env, words[0])
		words = words[1:]
	}
	switch {
	case len(words) > 0 && words[0] == "observer":
		c.args = words
	case len(words) > 2 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/observer":
		c.args = append([]string{"observer"}, words[3:]...)
	case len(words) > 2 && words[0] == "go" && words[1] == "run" && strings.HasPrefix(words[2], "./examples/"):
		c.args = append([]string{strings.TrimPrefix(words[2], "./examples/")}, words[3:]...)
	default:
		return c, false, nil
	}
	c.text = strings.TrimSpace(strings.SplitN(line, " #", 2)[0])
	if f := strings.Fields(comment); len(f) > 0 {
		switch {
		case f[0] == "skip":
			c.skip = true
		case f[0] == "exit" && len(f) > 1:
			if c.exit, err = strconv.Atoi(f[1]); err != nil {
				return c, false, fmt.Errorf("bad exit code in %q", comment)
			}
		}
	}
	if !c.skip {
		if why := runsUntilStopped(c.args); why != "" {
			return c, false, fmt.Errorf("%q %s: show it in a text block, or end the line with # skip", c.text, why)
		}
	}
	return c, true, nil
}

func isAssignment(w string) bool {
	i := strings.IndexByte(w, '=')
	return i > 0 && !strings.ContainsAny(w[:i], "-/.")
}

// runsUntilStopped says why a command would not end by itself, or "".
func runsUntilStopped(args []string) string {
	if args[0] != "observer" {
		return ""
	}
	sub := "run"
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		sub = args[1]
	}
	has := func(flag string) bool {
		return slices.ContainsFunc(args, func(a string) bool {
			return a == "-"+flag || a == "--"+flag || strings.HasPrefix(a, "-"+flag+"=") || strings.HasPrefix(a, "--"+flag+"=")
		})
	}
	switch {
	case has("help") || has("h"):
		return ""
	case sub == "run":
		return "runs the UI until it is quit"
	case sub == "headless" && !has("duration"):
		return "runs until a signal without --duration"
	}
	return ""
}

// splitWords splits a shell line into words, honouring quotes and
// backslashes, and returns the comment after an unquoted #. Anything that
// needs a real shell (variables, pipes, redirections, command lists) is
// an error: documented commands must run as written.
func splitWords(line string) (words []string, comment string, err error) {
	var cur strings.Builder
	inWord := false
	var quote rune
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			case r == '$' || r == '`':
				return nil, "", fmt.Errorf("%q: shell expansion is not supported in documented commands", line)
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '#' && !inWord:
			return words, string(rs[i+1:]), nil
		case strings.ContainsRune("$`|&;<>()*?", r):
			return nil, "", fmt.Errorf("%q: %q needs a shell; documented commands must run as written", line, r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, "", fmt.Errorf("%q: unterminated quote", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, "", nil
}

// sandbox is where one document's commands run, in order, sharing state
// as a reader following the document would.
type sandbox struct {
	doc      *testing.T // the document's test: what lives as long as the document
	dir      string
	dataDirs map[string]string // --data-dir as written -> inside dir
	postgres map[string]string // URL as written -> a fresh schema
}

func newSandbox(t *testing.T) *sandbox {
	return &sandbox{doc: t, dir: t.TempDir(), dataDirs: map[string]string{}, postgres: map[string]string{}}
}

var postgresURL = regexp.MustCompile(`postgres(ql)?://\S*`)

func (sb *sandbox) run(t *testing.T, c docCommand) {
	if c.skip {
		t.Skipf("%s:%d: marked skip: %s", c.file, c.line, c.text)
	}
	args := slices.Clone(c.args)
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case (a == "--data-dir" || a == "-data-dir") && i+1 < len(args):
			args[i+1] = sb.dataDir(args[i+1])
			i++
		case strings.HasPrefix(a, "--data-dir=") || strings.HasPrefix(a, "-data-dir="):
			k, v, _ := strings.Cut(a, "=")
			args[i] = k + "=" + sb.dataDir(v)
		case postgresURL.MatchString(a):
			args[i] = postgresURL.ReplaceAllStringFunc(a, func(u string) string { return sb.postgresDSN(t, u) })
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, args[0]), args[1:]...)
	cmd.Dir = ".." // the module root, where the documents' paths start
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+sb.dir, "HOME="+sb.dir, "NO_COLOR=1")
	cmd.Env = append(cmd.Env, c.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		t.Fatalf("%s:%d: %s: still running after %v\n%s", c.file, c.line, c.text, commandTimeout, out.String())
	}
	if code != c.exit {
		t.Fatalf("%s:%d: %s: exit %d (%v), want %d\n%s", c.file, c.line, c.text, code, err, c.exit, out.String())
	}
	t.Logf("%s (%v)", c.text, time.Since(start).Round(time.Millisecond))
}

// dataDir maps a --data-dir value to a directory inside the sandbox.
func (sb *sandbox) dataDir(v string) string {
	if d, ok := sb.dataDirs[v]; ok {
		return d
	}
	d := filepath.Join(sb.dir, "data-dirs", strconv.Itoa(len(sb.dataDirs)))
	sb.dataDirs[v] = d
	return d
}

// postgresDSN maps a documented URL to a fresh schema of the test server,
// the same one for every use of that URL in the document.
func (sb *sandbox) postgresDSN(t *testing.T, u string) string {
	if d, ok := sb.postgres[u]; ok {
		return d
	}
	base := os.Getenv(envPostgres)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set but CI=true: the PostgreSQL commands must run in CI", envPostgres)
		}
		t.Skipf("%s not set; PostgreSQL commands skipped", envPostgres)
	}
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	schema := "docs_test_" + hex.EncodeToString(buf[:])
	exec := func(t testing.TB, sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("connect %s: %v", envPostgres, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(t, "CREATE SCHEMA "+schema)
	sb.doc.Cleanup(func() { exec(sb.doc, "DROP SCHEMA "+schema+" CASCADE") })
	pu, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", envPostgres, err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	sb.postgres[u] = pu.String()
	return sb.postgres[u]
}

var mdLink = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)\s]*)?\)`)

// TestLinks checks that every relative link between documents points at
// a file that exists.
func TestLinks(t *testing.T) {
	for _, file := range markdownFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), target)); err != nil {
				t.Errorf("%s: broken link %s", file, target)
			}
		}
	}
}

// TestParseCommand pins the conventions the documents rely on.
func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		args []string
		exit int
		skip bool
		err  bool
	}{
		{line: "observer route CALL-1 1-800-FORTUNE", ok: true, args: []string{"observer", "route", "CALL-1", "1-800-FORTUNE"}},
		{line: "go run ./cmd/observer help", ok: true, args: []string{"observer", "help"}},
		{line: "go run ./examples/kvstore", ok: true, args: []string{"kvstore"}},
		{line: `observer route C '+44 20 7946 0000'  # exit 1`, ok: true, args: []string{"observer", "route", "C", "+44 20 7946 0000"}, exit: 1},
		{line: "NO_COLOR=1 observer snapshot # skip", ok: true, args: []string{"observer", "snapshot"}, skip: true},
		{line: "go test ./...", ok: false},
		{line: "observer", err: true},
		{line: "observer --rate 100", err: true},
		{line: "observer headless", err: true},
		{line: "observer headless --duration 2s", ok: true, args: []string{"observer", "headless", "--duration", "2s"}},
		{line: "observer run --help", ok: true, args: []string{"observer", "run", "--help"}},
		{line: "observer charge T1 ACC-001 $AMOUNT", err: true},
		{line: "observer metrics | grep routed", err: true},
	}
	for _, tc := range tests {
		c, ok, err := parseCommand(tc.line)
		if (err != nil) != tc.err || ok != tc.ok || tc.ok && (!slices.Equal(c.args, tc.args) || c.exit != tc.exit || c.skip != tc.skip) {
			t.Errorf("parseCommand(%q) = %+v, %v, %v", tc.line, c, ok, err)
		}
	}
}

// The generated part of reference/cli.md lies between these lines.
const (
	cliBegin = "<!-- BEGIN GENERATED: go test ./docs -run TestCLIReference -update -->"
	cliEnd   = "<!-- END GENERATED -->"
)

// TestCLIReference checks that reference/cli.md shows the help of every
// command as the binary prints it; -update rewrites it.
func TestCLIReference(t *testing.T) {
	const file = "reference/cli.md"
	help := func(args ...string) string {
		cmd := exec.Command(filepath.Join(binDir, "observer"), args...)
		// The default data directory is printed in the help: make it the
		// same on every machine.
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME=", "HOME=~")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("observer %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimRight(string(out), "\n")
	}
	usage := help("help")
	var names []string
	inCommands := false
	for _, l := range strings.Split(usage, "\n") {
		switch {
		case l == "Commands:":
			inCommands = true
		case inCommands && strings.HasPrefix(l, "  "):
			names = append(names, strings.Fields(l)[0])
		case inCommands:
			inCommands = false
		}
	}
	if len(names) == 0 {
		t.Fatalf("no commands in observer help:\n%s", usage)
	}
	var gen strings.Builder
	fmt.Fprintf(&gen, "%s\n\n## observer help\n\n```text\n%s\n```\n", cliBegin, usage)
	for _, name := range names {
		fmt.Fprintf(&gen, "\n## observer %s\n\n```text\n%s\n```\n", name, help(name, "--help"))
	}
	gen.WriteString("\n" + cliEnd)

	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, cliBegin), strings.Index(doc, cliEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q and %q lines", file, cliBegin, cliEnd)
	}
	want := doc[:i] + gen.String() + doc[j+len(cliEnd):]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s does not match the binary's help; run go test ./docs -run TestCLIReference -update", file)
}

// TestKeysReference checks that reference/keys.md names every key bound
// in the UI's key map.
func TestKeysReference(t *testing.T) {
	src, err := os.ReadFile("../internal/ui/keys.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("reference/keys.md")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{"up": "↑", "down": "↓"} // how the page writes them
	lists := regexp.MustCompile(`key\.WithKeys\(([^)]*)\)`).FindAllStringSubmatch(string(src), -1)
	if len(lists) == 0 {
		t.Fatal("no key.WithKeys in internal/ui/keys.go")
	}
	for _, l := range lists {
		for _, q := range regexp.MustCompile(`"[^"]*"`).FindAllString(l[1], -1) {
			k, _ := strconv.Unquote(q)
			if s, ok := shown[k]; ok {
				k = s
			}
			if !strings.Contains(string(doc), "`"+k+"`") {
				t.Errorf("reference/keys.md does not mention the key %s", k)
			}
		}
	}
}
