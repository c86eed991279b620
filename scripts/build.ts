/**
 * `bun run build`: compiles ./chatserver and ./chatclient as single-file
 * executables (no Bun, node_modules or sources needed to run them).
 * --bytecode needs --format=esm (otherwise Bun silently skips the bytecode);
 * autoloading .env and bunfig.toml is off so a binary behaves the same in any
 * directory.
 */
const targets = [
  { entry: "server/main.ts", out: "chatserver" },
  { entry: "client/main.ts", out: "chatclient" },
];

const only = process.argv.slice(2);
for (const { entry, out } of targets) {
  if (only.length > 0 && !only.includes(out)) continue;
  const started = performance.now();
  const proc = Bun.spawnSync(
    [
      process.execPath,
      "build",
      "--compile",
      "--minify",
      "--bytecode",
      "--format=esm",
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      entry,
      "--outfile",
      out,
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  const output = `${proc.stdout.toString()}${proc.stderr.toString()}`;
  // Bun exits 0 even when bytecode generation fails; treat that as a failure.
  if (proc.exitCode !== 0 || /error:/i.test(output)) {
    process.stderr.write(output);
    process.stderr.write(`build of ${out} failed\n`);
    process.exit(1);
  }
  console.log(`built ./${out} in ${Math.round(performance.now() - started)} ms`);
}
