// 512 flip-flops with adders between them, behind three pins: about 790 iCE40 logic cells,
// twice what an iCE40 LP384 has. The "does not fit" control for place and route.
module lcfill (
    input wire clk,
    input wire d,
    output wire q
);
    reg [511:0] s;
    always @(posedge clk) s <= {s[510:0], d} ^ {s[255:0] + s[511:256], s[511:256] - s[255:0]};
    assign q = s[511];
endmodule
