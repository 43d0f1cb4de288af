// Hand-written fixture for the sim/ benches (not generated): a "running-sum RNN" with the
// shiftrnn top-level protocol (docs/hardware.md). Three signed 8-bit elements (Fixed 8.6);
// h' = clip(h + x, -1.0, +1.0) elementwise, state cleared by s_axis_tuser. Its golden twin is a
// real golden.Model (identity ternary weights, hard tanh): see make_fixture.py.
// The cycle count per timestep is CPT (> 1): a beat taken in cycle 0 gives an output valid in
// cycle CPT, when s_axis_tready is high again.
`default_nettype none
module runsum #(
    parameter integer CPT = 3
) (
    input  wire        clk,
    input  wire        rst,
    input  wire [23:0] s_axis_tdata,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tuser,
    input  wire        s_axis_tlast,
    output reg  [23:0] m_axis_tdata,
    output reg         m_axis_tvalid,
    input  wire        m_axis_tready,
    output reg         m_axis_tuser,
    output reg         m_axis_tlast
);
    localparam integer CW = $clog2(CPT);
    localparam [CW-1:0] CNT0 = CPT[CW-1:0] - 2'd2;  // CPT - 2 in CW bits, no cast
    reg          busy;
    reg [CW-1:0] cnt;
    reg [23:0]   x;
    reg          first, last;
    reg [23:0]   h;
    wire slot_free = !m_axis_tvalid || m_axis_tready;
    wire done = busy && (cnt == 0) && slot_free;
    assign s_axis_tready = !busy;

    function automatic [7:0] step(input [7:0] hv, input [7:0] xv);
        reg signed [9:0] s;
        begin
            s = $signed({{2{hv[7]}}, hv}) + $signed({{2{xv[7]}}, xv});
            if (s > 10'sd64) step = 8'd64;
            else if (s < -10'sd64) step = 8'hc0;
            else step = s[7:0];
        end
    endfunction

    wire [23:0] h_base = first ? 24'd0 : h;
    wire [23:0] h_next = {step(h_base[23:16], x[23:16]), step(h_base[15:8], x[15:8]),
                          step(h_base[7:0], x[7:0])};

    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            cnt <= {CW{1'b0}};
            x <= 24'd0;
            first <= 1'b0;
            last <= 1'b0;
            h <= 24'd0;
            m_axis_tvalid <= 1'b0;
            m_axis_tdata <= 24'd0;
            m_axis_tuser <= 1'b0;
            m_axis_tlast <= 1'b0;
        end else begin
            if (m_axis_tvalid && m_axis_tready) m_axis_tvalid <= 1'b0;
            if (s_axis_tvalid && !busy) begin
                busy <= 1'b1;
                cnt <= CNT0;
                x <= s_axis_tdata;
                first <= s_axis_tuser;
                last <= s_axis_tlast;
            end else if (busy && cnt != 0) begin
                cnt <= cnt - 1'b1;
            end else if (done) begin
                busy <= 1'b0;
                h <= h_next;
                m_axis_tdata <= h_next;
                m_axis_tvalid <= 1'b1;
                m_axis_tuser <= first;
                m_axis_tlast <= last;
            end
        end
    end
endmodule
`default_nettype wire
