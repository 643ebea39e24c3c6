// SSH public keys for the guest-inspection tests, made with ssh-keygen (the private halves were
// thrown away), with the fingerprints ssh-keygen -l prints for them.
#pragma once

namespace palisade::hypervisor::testing {

constexpr const char* kAliceKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJxN5pR7SrAZfPqPlACfJKl1XwO/hBBWs7TgaGfP03P9";
constexpr const char* kAliceFingerprint = "SHA256:rOdexB+BpezLfH4RVPZQ6RWE/69Mgmi+dbNNh9EOeSI";

constexpr const char* kDeployKey =
    "ssh-rsa "
    "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDMXkHrJTseolpoRhcXWj9JNYs4+F1pEus6HnUdHlVMmoplhQ1HSQBvWLB6vIHd8Y"
    "AZ/n5vDeAJLX2x77htOEknRtF0dirmqKpDwpRmhqkEC5ZwL2Usx7mFXW56oWOcnyIqz3FO4LuiXFwTgSDtEXBJDnHHFix"
    "38FP11zGpViFVEQ==";
constexpr const char* kDeployFingerprint = "SHA256:97GILJ6Mq1l1xfQqLaOlMrFrsqvyNivd2ENWlrPovHI";

constexpr const char* kMalloryKey =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIChp+Zi+WGkq27zBZZJA1rqed2WrfNWSvNC176WQPZdQ";
constexpr const char* kMalloryFingerprint = "SHA256:jHxsBKkm+UTvGF2evKQo+pMgFIHB8buksiwFA4Bmg7c";

}  // namespace palisade::hypervisor::testing
