#!/bin/bash
# check-refs.sh - fail if a text file of the repository points at a file (or a
# DESIGN.md section) that does not exist.
#
#   bash tests/tools/check-refs.sh [repo-root]      (default: .)
#
# Scanned: README.md and every *.md at the top, docs/**/*.md, include/**/*.h,
# src/**/*.[ch], every *.sh (this one excepted: it names the patterns), .ci/run,
# slurm/*, tests/**/*.md.
# The file list comes from `git ls-files` (tracked plus untracked files that
# are not ignored) in a git checkout, else from find (build*/ and .git skipped).
#
# What counts as a reference:
#   - repository paths: docs/..., src/..., tests/..., apps/..., cmake/...,
#     include/..., slurm/..., .ci/... (not when glued to something before them:
#     build/apps/x, $here/tests/x, ${PROJECT_SOURCE_DIR}/src/x and
#     owner/repo:src/x, a file of another project, are not ours);
#   - bare DESIGN.md, CONVENTIONS.md, ARCHITECTURE.md, CHANGELOG.md,
#     CONTRIBUTING.md, LICENSE (found at the top, in docs/, or beside the file);
#   - relative markdown links [text](path) (http(s):, mailto: and #anchors are
#     not checked);
#   - sections: `DESIGN.md, section "Title"` (also `DESIGN.md "Title"` and
#     `DESIGN.md section "Title"`) must name a heading of docs/DESIGN.md.
# Ignored: paths with placeholders (<...>, {a,b}, $VAR, %), paths under build/,
# and any line containing "check-refs: ignore". A glob (tests/*.cmake) must
# match at least one file.
# Exit status: 0 when nothing dangles, 1 otherwise (each dangling reference is
# listed as file:line: reference), 2 on usage errors.
set -euo pipefail
root=${1:-.}
if [ ! -d "$root" ]; then
    echo "check-refs: no such directory: $root" >&2
    exit 2
fi
cd "$root"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    list() { git ls-files --cached --others --exclude-standard; }
else
    list() {
        find . -path ./.git -prune -o -path './build*' -prune -o -path './_build*' -prune \
            -o -path './install*' -prune -o -type f -print | sed 's|^\./||'
    }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# files that exist (tracked or not ignored), and only those
list | sort -u | while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done >"$tmp/all"

grep -E '^([^/]+\.md|docs/.*\.md|tests/.*\.md|include/.*\.h|src/.*\.[ch]|.*\.sh|\.ci/run|slurm/[^/]+)$' \
    "$tmp/all" | grep -v '^tests/tools/check-refs\.sh$' >"$tmp/scan" || true

perl - "$tmp/all" "$tmp/scan" <<'PERL'
use strict;
use warnings;
my ($allf, $scanf) = @ARGV;
open(my $fh, "<", $allf) or die;
my (%file, %dir);
while (my $f = <$fh>) {
    chomp $f;
    $file{$f} = 1;
    my $d = $f;
    while ($d =~ s{/[^/]*$}{}) { $dir{$d} = 1; }
}
close $fh;
my @all = sort keys %file;

# headings of docs/DESIGN.md, for section references
my %heading;
if (open(my $dh, "<", "docs/DESIGN.md")) {
    while (<$dh>) {
        if (/^#+\s+(.*?)\s*#*\s*$/) { $heading{$1} = 1; }
    }
    close $dh;
}

sub norm {    # collapse a/./b and a/x/../b
    my ($p) = @_;
    my @out;
    for my $c (split m{/}, $p) {
        next if $c eq "" || $c eq ".";
        if ($c eq "..") { return undef unless @out; pop @out; next; }
        push @out, $c;
    }
    return join("/", @out);
}
sub exists_path {
    my ($p) = @_;
    $p =~ s{/+$}{};
    return 1 if $p eq "";
    return $file{$p} || $dir{$p};
}
sub glob_ok {
    my ($p) = @_;
    my $re = quotemeta($p);
    $re =~ s/\\\*\\\*/.*/g;
    $re =~ s/\\\*/[^\/]*/g;
    $re =~ s/\\\?/[^\/]/g;
    for my $f (@all) { return 1 if $f =~ /^$re(?:\/|$)/; }
    return 0;
}

my $bad = 0;
my %seen;
sub report {
    my ($where, $ref, $why) = @_;
    return if $seen{"$where\0$ref"}++;
    print "$where: $ref" . ($why ? " ($why)" : "") . "\n";
    $bad++;
}

my $roots = qr{(?:docs|src|tests|apps|cmake|include|slurm|\.ci)};
my $bare = qr{(?:DESIGN|CONVENTIONS|ARCHITECTURE|CHANGELOG|CONTRIBUTING)\.md|LICENSE\b};

open(my $sh, "<", $scanf) or die;
while (my $f = <$sh>) {
    chomp $f;
    open(my $in, "<", $f) or next;
    my $fdir = $f =~ m{^(.*)/} ? $1 : "";
    my $is_md = $f =~ /\.md$/;
    my $n = 0;
    while (my $line = <$in>) {
        $n++;
        next if $line =~ /check-refs: ignore/;
        my $where = "$f:$n";

        # 1. repository paths
        while ($line =~ m{(?<![\w./\$\-\{\}:~@])($roots/[\w./*<>\{\}\$%,\-]*[\w*>\}])}g) {
            my $p = $1;
            next if $p =~ /[<>\{\}\$%]/;          # placeholder
            $p =~ s/,.*$//;                        # "src/a.c, src/b.c" lists
            if ($p =~ /[*?]/) {
                report($where, $p, "glob matches nothing") unless glob_ok($p);
                next;
            }
            report($where, $p) unless exists_path($p);
        }

        # 2. bare well-known file names
        while ($line =~ m{(?<![\w./\-])($bare)}g) {
            my $b = $1;
            next if $b eq "LICENSE" && $line =~ /LICENSE[\w-]/;
            my @cand = ($b, "docs/$b", ($fdir ne "" ? "$fdir/$b" : ()));
            report($where, $b) unless grep { exists_path($_) } @cand;
        }

        # 3. relative markdown links
        if ($is_md) {
            while ($line =~ m{\]\(([^)\s]+)(?:\s+"[^"]*")?\)}g) {
                my $t = $1;
                next if $t =~ m{^(?:[a-z][a-z0-9+.-]*:|#)}i;
                $t =~ s/#.*$//;
                next if $t eq "" || $t =~ /[<>\{\}\$%]/;
                my $p = $t =~ m{^/} ? norm($t) : norm(($fdir ne "" ? "$fdir/" : "") . $t);
                next if defined $p && $p =~ m{^build};
                report($where, $t, "link") unless defined $p && exists_path($p);
            }
        }

        # 4. DESIGN.md sections
        while ($line =~ m{DESIGN\.md,?\s+(?:section\s+)?"([^"]+)"}g) {
            my $title = $1;
            next if $title =~ /[<>]/;
            report($where, "DESIGN.md section \"$title\"", "no such heading in docs/DESIGN.md")
                unless $heading{$title};
        }
    }
    close $in;
}
close $sh;
if ($bad) {
    print STDERR "check-refs: $bad dangling reference(s)\n";
    exit 1;
}
print "check-refs: no dangling references in " . scalar(@all) . " files\n";
exit 0;
PERL
