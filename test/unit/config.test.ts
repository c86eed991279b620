import { describe, expect, test } from "bun:test";
import { ConfigError, describeDb, OPTIONS, resolveConfig } from "../../server/config.ts";
import { LOG_LEVELS } from "../../server/log.ts";

type Raw = Parameters<typeof resolveConfig>[0];
type Key = keyof typeof OPTIONS;

function configError(raw: Raw, env: Record<string, string | undefined> = {}): ConfigError {
  try {
    resolveConfig(raw, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw new Error(`expected a ConfigError, got ${String(err)}`);
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(raw)} ${JSON.stringify(env)}`);
}

describe("resolveConfig: cluster options", () => {
  test("--redis needs a MySQL database and a redis:// URL", () => {
    expect(configError({ redis: "redis://127.0.0.1:6379" }, {}).message).toContain("MySQL");
    expect(configError({ redis: "http://x", db: "mysql://h/d" }, {}).message).toContain("--redis");
    const c = resolveConfig(
      {},
      { REDIS_URL: "redis://r:6379", DATABASE_URL: "mysql://h/d", CHAT_REDIS_PREFIX: "t1" },
    );
    expect(c.redis).toBe("redis://r:6379");
    const flagWins = resolveConfig(
      { redis: "redis://flag:1", db: "mysql://h/d" },
      { REDIS_URL: "redis://env:2" },
    );
    expect(flagWins.redis).toBe("redis://flag:1");
    expect(c.redisPrefix).toBe("t1");
    expect(configError({ redisPrefix: "has space" }, {}).message).toContain("--redis-prefix");
  });
});

describe("resolveConfig: defaults", () => {
  test("no flags and no environment give the documented defaults", () => {
    expect(resolveConfig({}, {})).toEqual({
      host: "127.0.0.1",
      port: 6000,
      db: undefined,
      redis: undefined,
      redisPrefix: "chat",
      maxFrame: 65_536,
      maxOutputBytes: 1_048_576,
      idleTimeoutSec: 90,
      tokenTtlSec: 30 * 86_400,
      secret: undefined,
      maxConnections: expect.any(Number),
      maxPerAddress: 1024,
      rateLimit: 10_000,
      trustProxy: ["loopback"],
      loginFailuresPerAccount: 10,
      loginFailuresPerAddress: 100,
      registrationsPerAddress: 600,
      maxHashing: 4,
      logLevel: "info",
      logJson: false,
    });
  });

  test("the default connection cap leaves room under the open-file limit", () => {
    const c = resolveConfig({}, {});
    expect(c.maxConnections).toBeGreaterThanOrEqual(64);
    expect(c.maxConnections).toBeLessThan(20_000);
  });

  test("environment variables of other programs are ignored", () => {
    const c = resolveConfig({}, { PORT: "1", HOST: "0.0.0.0", SECRET: "x", LOG_LEVEL: "debug" });
    expect(c.port).toBe(6000);
    expect(c.host).toBe("127.0.0.1");
    expect(c.secret).toBeUndefined();
    expect(c.logLevel).toBe("info");
  });
});

describe("resolveConfig: precedence flag > env > default", () => {
  // For each option: the Config field, a valid env value, a different valid flag value, and the parsed values.
  const cases: {
    key: Key;
    field: string;
    env: string;
    flag: string;
    envValue: unknown;
    flagValue: unknown;
  }[] = [
    {
      key: "host",
      field: "host",
      env: "0.0.0.0",
      flag: "::1",
      envValue: "0.0.0.0",
      flagValue: "::1",
    },
    { key: "port", field: "port", env: "7000", flag: "7001", envValue: 7000, flagValue: 7001 },
    {
      key: "db",
      field: "db",
      env: "mysql://u:p@h:3306/env",
      flag: "flag.sqlite",
      envValue: "mysql://u:p@h:3306/env",
      flagValue: "flag.sqlite",
    },
    {
      key: "maxFrame",
      field: "maxFrame",
      env: "1024",
      flag: "2048",
      envValue: 1024,
      flagValue: 2048,
    },
    {
      key: "maxOutput",
      field: "maxOutputBytes",
      env: "65536",
      flag: "131072",
      envValue: 65536,
      flagValue: 131072,
    },
    { key: "idleTimeout", field: "idleTimeoutSec", env: "5", flag: "6", envValue: 5, flagValue: 6 },
    {
      key: "tokenTtl",
      field: "tokenTtlSec",
      env: "3600",
      flag: "60",
      envValue: 3600,
      flagValue: 60,
    },
    {
      key: "secret",
      field: "secret",
      env: "env-secret-0123456789",
      flag: "flag-secret-0123456789",
      envValue: "env-secret-0123456789",
      flagValue: "flag-secret-0123456789",
    },
    {
      key: "logLevel",
      field: "logLevel",
      env: "debug",
      flag: "warn",
      envValue: "debug",
      flagValue: "warn",
    },
    {
      key: "maxConnections",
      field: "maxConnections",
      env: "100",
      flag: "200",
      envValue: 100,
      flagValue: 200,
    },
    {
      key: "maxPerAddress",
      field: "maxPerAddress",
      env: "10",
      flag: "20",
      envValue: 10,
      flagValue: 20,
    },
    { key: "rateLimit", field: "rateLimit", env: "50", flag: "60", envValue: 50, flagValue: 60 },
    {
      key: "trustProxy",
      field: "trustProxy",
      env: "10.0.0.0/8",
      flag: "none",
      envValue: ["10.0.0.0/8"],
      flagValue: [],
    },
    {
      key: "loginFailures",
      field: "loginFailuresPerAccount",
      env: "3",
      flag: "4",
      envValue: 3,
      flagValue: 4,
    },
    {
      key: "addressLoginFailures",
      field: "loginFailuresPerAddress",
      env: "30",
      flag: "40",
      envValue: 30,
      flagValue: 40,
    },
    {
      key: "registrations",
      field: "registrationsPerAddress",
      env: "5",
      flag: "6",
      envValue: 5,
      flagValue: 6,
    },
    { key: "maxHashing", field: "maxHashing", env: "2", flag: "3", envValue: 2, flagValue: 3 },
    {
      key: "redisPrefix",
      field: "redisPrefix",
      env: "envp",
      flag: "flagp",
      envValue: "envp",
      flagValue: "flagp",
    },
    {
      key: "logJson",
      field: "logJson",
      env: "true",
      flag: "false",
      envValue: true,
      flagValue: false,
    },
  ];

  test("every option is covered here", () => {
    // --redis needs --db as well; its precedence is tested with the cluster options.
    const all = (Object.keys(OPTIONS) as Key[]).filter((k) => k !== "redis");
    expect(cases.map((c) => c.key).sort()).toEqual(all.sort());
  });

  for (const c of cases) {
    const envName = OPTIONS[c.key].env;
    const get = (raw: Raw, env: Record<string, string>) =>
      (resolveConfig(raw, env) as unknown as Record<string, unknown>)[c.field];

    test(`${c.key}: env ${envName} over the default`, () => {
      expect(get({}, { [envName]: c.env })).toEqual(c.envValue);
      expect(get({}, { [envName]: c.env })).not.toEqual(get({}, {}));
    });

    test(`${c.key}: flag over env`, () => {
      expect(get({ [c.key]: c.flag }, { [envName]: c.env })).toEqual(c.flagValue);
    });

    test(`${c.key}: flag over default`, () => {
      expect(get({ [c.key]: c.flag }, {})).toEqual(c.flagValue);
    });

    test(`${c.key}: an empty flag or env value falls through`, () => {
      expect(get({ [c.key]: "" }, { [envName]: c.env })).toEqual(c.envValue);
      expect(get({ [c.key]: "" }, { [envName]: "" })).toEqual(get({}, {}));
      expect(get({ [c.key]: undefined }, { [envName]: c.env })).toEqual(c.envValue);
    });
  }

  test("log-json as a boolean flag: false overrides env true, true overrides env false", () => {
    expect(resolveConfig({ logJson: false }, { CHAT_LOG_JSON: "true" }).logJson).toBe(false);
    expect(resolveConfig({ logJson: true }, { CHAT_LOG_JSON: "false" }).logJson).toBe(true);
  });

  test("boolean spellings", () => {
    for (const t of ["1", "true", "TRUE", "yes", "Yes", "on", "ON"]) {
      expect(resolveConfig({}, { CHAT_LOG_JSON: t }).logJson).toBe(true);
    }
    for (const f of ["0", "false", "False", "no", "NO", "off", "Off"]) {
      expect(resolveConfig({}, { CHAT_LOG_JSON: f }).logJson).toBe(false);
    }
  });

  test("every log level is accepted", () => {
    for (const level of LOG_LEVELS)
      expect(resolveConfig({ logLevel: level }, {}).logLevel).toBe(level);
  });

  test("integer limits are inclusive", () => {
    expect(resolveConfig({ port: "0" }, {}).port).toBe(0);
    expect(resolveConfig({ port: "65535" }, {}).port).toBe(65_535);
    expect(resolveConfig({ maxFrame: "256" }, {}).maxFrame).toBe(256);
    expect(resolveConfig({ maxFrame: String(16 * 1024 * 1024) }, {}).maxFrame).toBe(
      16 * 1024 * 1024,
    );
    expect(resolveConfig({ maxOutput: String(1024 ** 3) }, {}).maxOutputBytes).toBe(1024 ** 3);
    expect(resolveConfig({ idleTimeout: "1" }, {}).idleTimeoutSec).toBe(1);
    expect(resolveConfig({ idleTimeout: "86400" }, {}).idleTimeoutSec).toBe(86_400);
    expect(resolveConfig({ tokenTtl: String(366 * 86_400) }, {}).tokenTtlSec).toBe(366 * 86_400);
    expect(resolveConfig({ secret: "a".repeat(16) }, {}).secret).toBe("a".repeat(16));
  });

  test("db: sqlite:// URLs and plain paths are accepted", () => {
    expect(resolveConfig({ db: "sqlite:///tmp/x.db" }, {}).db).toBe("sqlite:///tmp/x.db");
    expect(resolveConfig({ db: "./data/chat.sqlite" }, {}).db).toBe("./data/chat.sqlite");
    expect(resolveConfig({ db: ":memory:" }, {}).db).toBe(":memory:");
  });
});

describe("resolveConfig: invalid values name the option", () => {
  const invalid: { key: Key; values: string[]; names: RegExp }[] = [
    {
      key: "port",
      values: ["abc", "-1", "65536", "1.5", "99999999999", "NaN", "Infinity"],
      names: /port/,
    },
    {
      key: "maxFrame",
      values: ["255", "0", String(16 * 1024 * 1024 + 1), "big", "1.5"],
      names: /--max-frame/,
    },
    {
      key: "maxOutput",
      values: ["65535", "0", String(1024 ** 3 + 1), "lots"],
      names: /--max-output/,
    },
    { key: "idleTimeout", values: ["0", "-5", "86401", "1.5", "soon"], names: /--idle-timeout/ },
    {
      key: "tokenTtl",
      values: ["59", "0", String(366 * 86_400 + 1), "forever"],
      names: /--token-ttl/,
    },
    { key: "logLevel", values: ["verbose", "INFO", "inf", "0"], names: /--log-level/ },
    { key: "logJson", values: ["maybe", "2", "yess", "t"], names: /--log-json/ },
    { key: "secret", values: ["short", "a".repeat(15), "x"], names: /--secret/ },
    {
      key: "db",
      values: ["postgres://u:p@h/db", "MYSQL://u:p@h/db", "http://x", "redis://h"],
      names: /--db/,
    },
  ];

  for (const { key, values, names } of invalid) {
    test(`${key} from the flag`, () => {
      for (const v of values) {
        const e = configError({ [key]: v });
        expect(e.message).toMatch(names);
      }
    });
    test(`${key} from the environment`, () => {
      for (const v of values) {
        const e = configError({}, { [OPTIONS[key].env]: v });
        expect(e.message).toMatch(names);
      }
    });
  }

  test("a valid flag hides an invalid env value", () => {
    expect(resolveConfig({ port: "7000" }, { CHAT_PORT: "abc" }).port).toBe(7000);
  });

  test("the message is one line", () => {
    for (const raw of [
      { port: "x" },
      { logLevel: "x" },
      { secret: "x" },
      { db: "pg://x" },
    ] as Raw[]) {
      expect(configError(raw).message).not.toContain("\n");
    }
  });

  test("errors never echo a secret or a database password", () => {
    expect(configError({ secret: "hunter2" }).message).not.toContain("hunter2");
    expect(configError({ db: "postgres://admin:s3cr3tpw@db/chat" }).message).not.toContain(
      "s3cr3tpw",
    );
  });

  test("a whitespace-only port is an error, not port 0 (any free port)", () => {
    // Number("  ") is 0, and 0 is a valid port, so this silently listened on a random port.
    expect(configError({ port: "  " }).message).toMatch(/port/);
    expect(configError({}, { CHAT_PORT: " " }).message).toMatch(/port/);
  });

  test("integers must be plain decimal: hex, binary, exponent and padded forms are rejected", () => {
    for (const v of ["0x1770", "0b1", "0o17", "6e3", " 6000", "6000 ", "+6000"]) {
      const e = configError({ port: v });
      expect(e.message).toMatch(/port/);
    }
    expect(configError({ maxFrame: "1e5" }).message).toMatch(/--max-frame/);
  });
});

describe("describeDb", () => {
  test("the default database", () => {
    expect(describeDb(undefined)).toBe("sqlite:chat.sqlite");
    expect(describeDb("")).toBe("sqlite:chat.sqlite");
  });

  test("SQLite paths", () => {
    expect(describeDb("data/chat.sqlite")).toBe("sqlite:data/chat.sqlite");
    expect(describeDb("sqlite:///tmp/x.db")).toBe("sqlite:/tmp/x.db");
  });

  test("a MySQL URL keeps user, host, port and database", () => {
    expect(describeDb("mysql://chat:pw@db.example:3306/chat")).toBe(
      "mysql://chat@db.example:3306/chat",
    );
    expect(describeDb("mysql://db.example/chat")).toBe("mysql://db.example/chat");
  });

  const secrets: [string, string][] = [
    ["mysql://chat:s3cretPW@db:3306/chat", "s3cretPW"],
    ["mysql://chat:s3cretPW@db/chat?ssl=true", "s3cretPW"],
    ["mysql://:s3cretPW@db/chat", "s3cretPW"],
    ["mysql://chat:p%40ss%3Aword@db/chat", "ss%3Aword"],
    ["mysql://chat:p%40ss%3Aword@db/chat", "ss:word"],
    ["mysql://chat:p@ss@db/chat", "p@ss"],
    ["mysql://chat:p@ss@db/chat", "p%40ss"],
    ["mysql://chat:x@db/chat?password=qsecret", "qsecret"],
    ["mysql://chat:x@db/chat#fragsecret", "fragsecret"],
    ["mysql://chat:パスワード@db/chat", "パスワード"],
    ["mysql://chat:パスワード@db/chat", encodeURIComponent("パスワード")],
  ];
  for (const [url, secret] of secrets) {
    test(`never prints the password of ${url}`, () => {
      const d = describeDb(url);
      expect(d).not.toContain(secret);
      expect(d.startsWith("mysql://")).toBe(true);
    });
  }

  test("every database URL that resolveConfig accepts is described without its password", () => {
    for (const url of [
      "mysql://root:rootpw1@127.0.0.1:3306/chat",
      "mysql://app:apppw22@[::1]:3307/c",
    ]) {
      const db = resolveConfig({ db: url }, {}).db;
      const d = describeDb(db);
      expect(d).not.toMatch(/rootpw1|apppw22/);
    }
  });
});
