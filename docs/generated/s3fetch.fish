# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_s3fetch_global_optspecs
    string join \n download-dir= r/regex= include= exclude= min-size= max-size= newer-than= older-than= include-archived shard= shard-count= shard-by= plan= inventory= c/concurrent-downloads= list-concurrency= multipart-threshold= part-size= max-bandwidth= max-memory= retries= idle-timeout= checksum-mode= t/threads= delimiter= dry-run skip-existing sync compare= lock no-preserve-mtime no-resume failed-keys= keys-from= output= q/quiet progress= d/debug region= endpoint-url= force-path-style profile= no-sign-request ca-bundle= request-payer= h/help V/version
end

function __fish_s3fetch_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_s3fetch_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_s3fetch_using_subcommand
    set -l cmd (__fish_s3fetch_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c s3fetch -n "__fish_s3fetch_needs_command" -l download-dir -d 'Directory to download into; it must exist [default: the current directory]' -r -F
complete -c s3fetch -n "__fish_s3fetch_needs_command" -s r -l regex -d 'Only keys in which this regex is found (searched in the full key); look-around and backreferences work as in Python\'s `re`' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l include -d 'Only keys matching this glob, relative to the URI\'s prefix (`*` within a path segment, `**` across them); repeatable. --include and --exclude apply in the order given, the last one that matches deciding; when the first is an --include, keys no rule matches are left out' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l exclude -d 'Leave out keys matching this glob (see --include); repeatable' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l min-size -d 'Only objects of at least this size (e.g. 1MiB), from the listing' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l max-size -d 'Only objects of at most this size (e.g. 10GB), from the listing' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l newer-than -d 'Only objects modified at or after T: a date (2024-06-01, UTC), an RFC 3339 time (2024-06-01T12:00:00+02:00) or an age (7d, 12h, 1w2d), from the listing' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l older-than -d 'Only objects modified before T (as for --newer-than)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l shard -d 'Take the K-th of N disjoint parts of the selected keys (a stable hash of each key decides; the N shards\' union is the whole selection): `K/N` counting from 0, or `auto` for an orchestrator\'s index (Kubernetes JOB_COMPLETION_INDEX, AWS Batch AWS_BATCH_JOB_ARRAY_INDEX, Slurm SLURM_ARRAY_TASK_ID)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l shard-count -d 'N for --shard auto where the orchestrator does not say it (Kubernetes); also S3FETCH_SHARD_COUNT' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l shard-by -d 'How --shard deals out keys: `hash` (the default without --plan) or `range` (the default with it: each shard lists only its own key range, so N shards send about as many LIST requests as one run)' -r -f -a "hash\t''
range\t''"
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l plan -d 'The split points of range shards, made once by `s3fetch plan S3_URI --shards N > plan.json` and given to every shard' -r -F
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l inventory -d 'Take the objects an S3 Inventory report lists instead of listing (s3://bucket/path/manifest.json, CSV format): no LIST request; sizes, times and ETags from the report; the URI\'s prefix and every filter still apply' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -s c -l concurrent-downloads -d 'Downloads in flight at once' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l list-concurrency -d 'List requests in flight at once: one prefix is listed in parallel key ranges (1: page by page)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l multipart-threshold -d 'Objects larger than this are fetched in ranged parts, several at once (e.g. 16MiB, 1GB)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l part-size -d 'Size of each ranged part (e.g. 8MiB); an object of more than 16 parts gets larger ones (a 16th of it, a multiple of this, up to 64MiB)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l max-bandwidth -d 'Cap on the bytes per second of all downloads together, e.g. 100MB/s, 1Gbit/s, 500KiB/s (bytes per second without a unit); held to within a few percent over any 10 seconds' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l max-memory -d 'Cap on the bytes of response bodies held in memory at once (received, not yet written), e.g. 256MiB; fewer requests run at once to stay under it. At least 16MiB and one --part-size. Default: no cap' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l retries -d 'Retries of a request after transient failures (5xx, throttling, timeouts, broken connections) while nothing else in the run succeeds; while the run makes progress, four times as many. A broken download resumes from its last byte' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l idle-timeout -d 'Abandon (and resume) a download that receives no bytes for this many seconds (after one second already, if other downloads completed meanwhile: a stuck connection)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l checksum-mode -d 'Verify each object against the checksum S3 keeps for it (full-object CRC64NVME, CRC32C or CRC32; else a plain-MD5 ETag, read back from the file for ranged downloads). `disabled` skips it, e.g. for stores that send wrong checksums' -r -f -a "enabled\t''
disabled\t''"
complete -c s3fetch -n "__fish_s3fetch_needs_command" -s t -l threads -d 'Deprecated alias of --concurrent-downloads' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l delimiter -d 'Separator of "directories" in keys; keys ending with it are skipped' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l compare -d 'What --sync compares besides the size: `mtime`, or `etag` — the modification time and the ETag s3fetch recorded on the file (an extended attribute, else the index .s3fetch-etags.jsonl in the download directory) when it downloaded it; `etag` implies --sync' -r -f -a "mtime\t''
etag\t''"
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l failed-keys -d 'Write the key of every object that failed to FILE, one per line (an empty file when none failed); re-run them with --keys-from FILE' -r -F
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l keys-from -d 'Download exactly the keys listed in FILE (one per line; `-` reads stdin) instead of listing the prefix; each key must be under S3_URI\'s prefix, and --regex still applies' -r -F
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l output -d '`json`: one JSON object per line on stdout per event (found, downloaded, skipped, failed) and a final summary, nothing else on stdout (fields: see docs/output.md)' -r -f -a "text\t'For people: keys and summaries as --progress says'
json\t'For scripts: JSON lines'"
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l progress -d 'How to show progress' -r -f -a "simple\t'Each downloaded key on its own line'
detailed\t'Each key, then a summary'
live-update\t'One status line rewritten in place, then a summary'
fancy\t'A progress bar, then a summary'"
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l region -d 'AWS region [default: from the environment or profile, else us-east-1]' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l endpoint-url -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 [env: AWS_ENDPOINT_URL]' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l profile -d 'Named profile from ~/.aws/config (SSO profiles work)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l ca-bundle -d 'PEM file of certificates to trust besides the system\'s (a private CA of an S3-compatible store) [env: AWS_CA_BUNDLE]' -r -F
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l request-payer -d 'Agree to pay for the requests of a requester-pays bucket (`requester`): sent with every request (listing, HEAD, GET, inventory)' -r
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l include-archived -d 'Try objects in GLACIER or DEEP_ARCHIVE that are not restored instead of skipping them (they fail unless restored since the listing); restored ones download either way'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l dry-run -l list-only -d 'List the keys that would be downloaded; download nothing'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l skip-existing -d 'Do not download an object whose file exists with the object\'s size'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l sync -d 'Do not download an object whose file exists with the object\'s size and modification time (which s3fetch sets to the object\'s LastModified): a second run fetches only what is new or changed'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l lock -d 'One download per node: hold an exclusive lock on the download directory for the run (the file .s3fetch.lock in it). Another s3fetch with --lock into the same directory waits, saying for whom, then fetches only what the first did not (--lock implies --sync). A holder that dies releases the lock'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l no-preserve-mtime -d 'Leave each file\'s modification time at the time of download, instead of the object\'s LastModified'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l no-resume -d 'Start large downloads afresh: remove the partial files an interrupted run left (normally continued) and keep none when interrupted'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -s q -l quiet -d 'Print nothing on stdout (errors still go to stderr)'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -s d -l debug -d 'Debug logging on stderr'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l force-path-style -d 'Path-style requests (endpoint/bucket/key); on by default for IP and localhost endpoints'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -l no-sign-request -d 'Send unsigned requests (public buckets); no credentials needed'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -s V -l version -d 'Print version'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -a "plan" -d 'Compute the split points of N range shards of S3_URI, printed as JSON'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -a "cat" -d 'Write objects to stdout in key order, raw or as a tar stream'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -a "completions" -d 'Print the shell completion script of s3fetch and its commands to stdout'
complete -c s3fetch -n "__fish_s3fetch_needs_command" -a "man" -d 'Print the s3fetch(1) man page (roff) to stdout, or write every page into a directory'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l shards -d 'N, the number of shards' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l inventory -d 'Split by the keys of this S3 Inventory report (s3://bucket/path/manifest.json): exact, and no LIST request' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l max-requests -d 'The most LIST requests the sampling may send [default: 8 + 2 N]' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l retries -d 'Retries of a request after transient failures' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l region -d 'AWS region [default: from the environment or profile, else us-east-1]' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l endpoint-url -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 [env: AWS_ENDPOINT_URL]' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l profile -d 'Named profile from ~/.aws/config (SSO profiles work)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l ca-bundle -d 'PEM file of certificates to trust besides the system\'s (a private CA of an S3-compatible store) [env: AWS_CA_BUNDLE]' -r -F
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l request-payer -d 'Agree to pay for the requests of a requester-pays bucket (`requester`): sent with every request (listing, HEAD, GET, inventory)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l force-path-style -d 'Path-style requests (endpoint/bucket/key); on by default for IP and localhost endpoints'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -l no-sign-request -d 'Send unsigned requests (public buckets); no credentials needed'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l format -d '`raw`: the objects\' bytes one after the other; `tar`: a POSIX tar stream, each object an entry named by the path a download would write it to, with its size and modification time' -r -f -a "raw\t''
tar\t''"
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -s r -l regex -d 'Only keys in which this regex is found (searched in the full key); look-around and backreferences work as in Python\'s `re`' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l include -d 'Only keys matching this glob, relative to the URI\'s prefix (`*` within a path segment, `**` across them); repeatable. --include and --exclude apply in the order given, the last one that matches deciding; when the first is an --include, keys no rule matches are left out' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l exclude -d 'Leave out keys matching this glob (see --include); repeatable' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l min-size -d 'Only objects of at least this size (e.g. 1MiB), from the listing' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l max-size -d 'Only objects of at most this size (e.g. 10GB), from the listing' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l newer-than -d 'Only objects modified at or after T: a date (2024-06-01, UTC), an RFC 3339 time (2024-06-01T12:00:00+02:00) or an age (7d, 12h, 1w2d), from the listing' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l older-than -d 'Only objects modified before T (as for --newer-than)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l shard -d 'Take the K-th of N disjoint parts of the selected keys (a stable hash of each key decides; the N shards\' union is the whole selection): `K/N` counting from 0, or `auto` for an orchestrator\'s index (Kubernetes JOB_COMPLETION_INDEX, AWS Batch AWS_BATCH_JOB_ARRAY_INDEX, Slurm SLURM_ARRAY_TASK_ID)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l shard-count -d 'N for --shard auto where the orchestrator does not say it (Kubernetes); also S3FETCH_SHARD_COUNT' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l shard-by -d 'How --shard deals out keys: `hash` (the default without --plan) or `range` (the default with it: each shard lists only its own key range, so N shards send about as many LIST requests as one run)' -r -f -a "hash\t''
range\t''"
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l plan -d 'The split points of range shards, made once by `s3fetch plan S3_URI --shards N > plan.json` and given to every shard' -r -F
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l inventory -d 'Take the objects an S3 Inventory report lists instead of listing (s3://bucket/path/manifest.json, CSV format): no LIST request; sizes, times and ETags from the report; the URI\'s prefix and every filter still apply' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l keys-from -d 'Exactly the keys listed in FILE (one per line; `-` reads stdin), sorted by key first' -r -F
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -s c -l concurrent-downloads -d 'Requests in flight at most (memory permitting)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l multipart-threshold -d 'Objects larger than this are fetched in ranged parts, several at once' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l part-size -d 'Size of each ranged part' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l max-bandwidth -d 'Cap on the bytes per second of all requests together (e.g. 100MB/s, 1Gbit/s)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l max-memory -d 'Cap on the bytes held in memory: objects ahead and parts in flight (e.g. 512MiB); at least 16MiB and one --part-size. Default: a quarter of the cgroup\'s memory.max (16MiB to 1GiB) when one is set, else 128MiB' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l retries -d 'Retries of a request after transient failures' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l idle-timeout -d 'Abandon (and resume) a request that receives no bytes for this many seconds' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l checksum-mode -d 'Verify each object against the checksum S3 keeps for it; `disabled` skips it' -r -f -a "enabled\t''
disabled\t''"
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l delimiter -d 'Separator of "directories" in keys' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l region -d 'AWS region [default: from the environment or profile, else us-east-1]' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l endpoint-url -d 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 [env: AWS_ENDPOINT_URL]' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l profile -d 'Named profile from ~/.aws/config (SSO profiles work)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l ca-bundle -d 'PEM file of certificates to trust besides the system\'s (a private CA of an S3-compatible store) [env: AWS_CA_BUNDLE]' -r -F
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l request-payer -d 'Agree to pay for the requests of a requester-pays bucket (`requester`): sent with every request (listing, HEAD, GET, inventory)' -r
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l include-archived -d 'Try objects in GLACIER or DEEP_ARCHIVE that are not restored instead of skipping them (they fail unless restored since the listing); restored ones download either way'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -s d -l debug -d 'Debug logging on stderr'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l force-path-style -d 'Path-style requests (endpoint/bucket/key); on by default for IP and localhost endpoints'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -l no-sign-request -d 'Send unsigned requests (public buckets); no credentials needed'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand cat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c s3fetch -n "__fish_s3fetch_using_subcommand man" -l dir -d 'Write s3fetch.1 and a page for each command (s3fetch-plan.1, s3fetch-cat.1, s3fetch-completions.1) into DIR, creating it if needed' -r -F
complete -c s3fetch -n "__fish_s3fetch_using_subcommand man" -s h -l help -d 'Print help'
