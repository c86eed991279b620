import { expect, test } from "bun:test";
import { complete } from "../../client/complete.ts";

const ctx = { loggedIn: true, users: ["bob", "bill", "123"], groups: ["devs", "design"] };

test("command names, for the state we are in", () => {
  expect(complete("gr", ctx)).toEqual([["groupchat", "groups"], "gr"]);
  expect(complete("joi", ctx)).toEqual([["joingroup "], "joi"]);
  expect(complete("reg", ctx)).toEqual([[], "reg"]);
  expect(complete("reg", { ...ctx, loggedIn: false })).toEqual([["register "], "reg"]);
});

test("user and group names for the argument that takes them", () => {
  expect(complete("chat b", ctx)).toEqual([["bill", "bob"], "b"]);
  expect(complete("chat bo", ctx)).toEqual([["bob "], "bo"]);
  expect(complete("addfriend bo", ctx)).toEqual([["bob"], "bo"]);
  expect(complete("groupchat de", ctx)).toEqual([["design", "devs"], "de"]);
  expect(complete("leavegroup dev", ctx)).toEqual([["devs"], "dev"]);
});

test("names made of digits complete with the @ that makes them names", () => {
  expect(complete("chat @1", ctx)).toEqual([["@123 "], "@1"]);
  expect(complete("chat 1", ctx)).toEqual([[], "1"]);
});

test("the colon form completes too", () => {
  expect(complete("chat:bo", ctx)).toEqual([["bob:"], "bo"]);
  expect(complete("addgroup:de", ctx)).toEqual([["design", "devs"], "de"]);
});

test("nothing to offer for free text", () => {
  expect(complete("chat bob hel", ctx)).toEqual([[], "chat bob hel"]);
  expect(complete("nope x", ctx)).toEqual([[], "x"]);
});
