/**
 * providers.aws.sign_req: AWS's SigV4 vector as OPA signs it, and refusals where the answer
 * could differ from OPA's (exotic URLs, header names equal but for case, unknown request keys).
 */
import { describe, expect, it } from "vitest";
import { awsHostBuiltins } from "../../src/compiler/host-aws.ts";

const sign = awsHostBuiltins["providers.aws.sign_req"]!;
const config = {
  aws_access_key: "MYAWSACCESSKEYGOESHERE",
  aws_secret_access_key: "MYAWSSECRETACCESSKEYGOESHERE",
  aws_service: "s3",
  aws_region: "us-east-1",
};
const T = 1451311705000000000; // held exactly by a double

describe("providers.aws.sign_req", () => {
  it("signs the request's headers and adds host, date and content hash (OPA's own vector)", () => {
    expect(sign({ method: "get", url: "http://example.com", headers: { foo: "bar" } }, config, T)).toEqual({
      method: "get",
      url: "http://example.com",
      headers: {
        foo: "bar",
        host: "example.com",
        "x-amz-date": "20151228T140825Z",
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        Authorization:
          "AWS4-HMAC-SHA256 Credential=MYAWSACCESSKEYGOESHERE/20151228/us-east-1/s3/aws4_request,SignedHeaders=foo;host;x-amz-content-sha256;x-amz-date,Signature=8f1dc7c9b9978356a0d0989fd26a95307f4f8a4aa264d8220647b7097d839952",
      },
    });
  });

  it("a changed secret, header or time changes the signature", () => {
    const auth = (r: unknown, c: object, t: number) =>
      (sign(r, c, t) as { headers: { Authorization: string } }).headers.Authorization;
    const base = auth({ method: "get", url: "http://example.com" }, config, T);
    expect(auth({ method: "get", url: "http://example.com" }, { ...config, aws_secret_access_key: "x" }, T)).not.toBe(
      base,
    );
    expect(auth({ method: "get", url: "http://example.com", headers: { a: "b" } }, config, T)).not.toBe(base);
    expect(auth({ method: "get", url: "http://example.com" }, config, T + 1e9)).not.toBe(base);
  });

  it("answers undefined (a builtin error) for missing keys and wrong types", () => {
    expect(sign({ url: "http://example.com" }, config, T)).toBeUndefined();
    expect(sign({ method: "get", url: "http://example.com" }, { ...config, aws_region: 1 }, T)).toBeUndefined();
    expect(
      sign({ method: "get", url: "http://example.com" }, { ...config, disable_payload_signing: "yes" }, T),
    ).toBeUndefined();
    expect(sign({ method: "get", url: "http://example.com" }, config, 1.5)).toBeUndefined();
  });

  it("fails the evaluation where Go's URL parsing or map order would decide", () => {
    expect(() => sign({ method: "get", url: "http://example.com/a b" }, config, T)).toThrow(/plain form/);
    expect(() =>
      sign({ method: "get", url: "http://example.com", headers: { Foo: "1", foo: "2" } }, config, T),
    ).toThrow(/but for case/);
    expect(() => sign({ method: "get", url: "http://example.com", bogus: 1 }, config, T)).toThrow(/not known/);
  });
});
